#!/usr/bin/env python3
"""Checks every catalog listed in LINGUAS against the strings in the code.

    check-catalogs.py PO_DIR SOURCE_ROOT DOMAIN

A template is extracted afresh from the files in POTFILES.in (with the
arguments of meson's 'glib' preset), then for each language:
  - msgfmt --check --check-format compiles it (printf specifiers agree);
  - every msgid of the template is translated, none fuzzy (msgcmp);
  - it holds no msgid the code no longer has, and no obsolete entries;
  - the compiled catalog really translates, keeping the format specifiers.
TAP output; exit status 1 on any failure.
"""

import gettext
import os
import re
import subprocess
import sys
import tempfile

XGETTEXT_ARGS = [
    "--from-code=UTF-8", "--add-comments",
    "--keyword=_", "--keyword=N_", "--keyword=C_:1c,2", "--keyword=NC_:1c,2",
    "--keyword=g_dcgettext:2", "--keyword=g_dngettext:2,3",
    "--keyword=g_dpgettext2:2c,3",
    "--flag=N_:1:pass-c-format", "--flag=C_:2:pass-c-format",
    "--flag=NC_:2:pass-c-format", "--flag=g_dngettext:2:pass-c-format",
    "--flag=g_strdup_printf:1:c-format", "--flag=g_string_printf:2:c-format",
    "--flag=g_string_append_printf:2:c-format",
    "--flag=g_error_new:3:c-format", "--flag=g_set_error:4:c-format",
    "--flag=g_markup_printf_escaped:1:c-format", "--flag=g_log:3:c-format",
    "--flag=g_print:1:c-format", "--flag=g_printerr:1:c-format",
    "--flag=g_printf:1:c-format", "--flag=g_fprintf:2:c-format",
    "--flag=g_sprintf:2:c-format", "--flag=g_snprintf:3:c-format",
]
FORMAT = re.compile(r"%(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t|L|q)?"
                    r"[diouxXeEfFgGcspn%]")

results = []


def ok(cond, name, detail=""):
    results.append(bool(cond))
    print("%s %d - %s" % ("ok" if cond else "not ok", len(results), name))
    if not cond and detail:
        for line in detail.rstrip().splitlines():
            print("# " + line)
    return cond


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, **kw)


def msgids(po):
    """Set of (msgctxt, msgid) of the non-obsolete entries, via msgcat's
    normalized output (one line per string)."""
    r = run(["msgcat", "--no-wrap", "--sort-output", po])
    if r.returncode != 0:
        raise RuntimeError(r.stdout.decode())
    ids, ctx, cur, field = set(), None, None, None
    for line in r.stdout.decode("utf-8").splitlines() + [""]:
        if line.startswith("msgctxt "):
            ctx = line[8:]
        elif line.startswith("msgid "):
            cur, field = line[6:], "id"
        elif line.startswith('"') and field == "id":
            cur += line
        elif line.startswith("msgstr") or line.startswith("msgid_plural"):
            if field == "id" and cur != '""':
                ids.add((ctx, cur))
            ctx, field = None, None
    return ids


def main():
    with tempfile.TemporaryDirectory(prefix="po-check-") as tmp:
        return check(tmp, *sys.argv[1:4])


def check(tmp, po_dir, src_root, domain):
    with open(os.path.join(po_dir, "LINGUAS")) as f:
        langs = [w for l in f for w in l.split("#")[0].split()]
    with open(os.path.join(po_dir, "POTFILES.in")) as f:
        files = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    ok(langs, "LINGUAS lists at least one language")
    pot = os.path.join(tmp, domain + ".pot")
    missing = [p for p in files if not os.path.exists(os.path.join(src_root, p))]
    ok(not missing, "every file of POTFILES.in exists", "missing: %s" % missing)
    r = run(["xgettext", "--package-name=" + domain, "-o", pot] + XGETTEXT_ARGS
            + files, cwd=src_root)
    ok(r.returncode == 0 and os.path.exists(pot), "xgettext extracts a template",
       r.stdout.decode())
    template = msgids(pot)
    ok(len(template) > 50, "the template has the plugin's and the CLI's strings "
       "(%d)" % len(template))
    # Every file in the code that marks strings is listed.
    unlisted = []
    for d in ("plugin", "src"):
        for name in sorted(os.listdir(os.path.join(src_root, d))):
            path = os.path.join(d, name)
            if name.endswith(".c") and path not in files:
                with open(os.path.join(src_root, path), encoding="utf-8") as f:
                    if re.search(r"\b(?:N?_|C_|NC_)\s*\(\s*\"", f.read()):
                        unlisted.append(path)
    ok(not unlisted, "POTFILES.in lists every source file with marked strings",
       "not listed: %s" % unlisted)

    for lang in langs:
        po = os.path.join(po_dir, lang + ".po")
        mo = os.path.join(tmp, lang + ".mo")
        r = run(["msgfmt", "--check", "--check-format", "--statistics",
                 "-o", mo, po], env=dict(os.environ, LC_ALL="C"))
        out = r.stdout.decode("utf-8", "replace")
        ok(r.returncode == 0, "%s: msgfmt --check --check-format" % lang, out)
        ok(re.fullmatch(r"\d+ translated messages?\.\s*", out),
           "%s: no fuzzy or untranslated messages" % lang, out)
        r = run(["msgcmp", po, pot])
        ok(r.returncode == 0, "%s: translates every message of the template"
           % lang, r.stdout.decode("utf-8", "replace"))
        have = msgids(po)
        stale = sorted(i for _, i in have - template)
        ok(not stale, "%s: no messages the code no longer has" % lang,
           "\n".join(stale[:20]))
        with open(po, encoding="utf-8") as f:
            obsolete = [l for l in f if l.startswith("#~")]
        ok(not obsolete, "%s: no obsolete entries" % lang)

        # The compiled catalog translates, and keeps every format specifier.
        with open(mo, "rb") as f:
            cat = gettext.GNUTranslations(f)
        # Plural entries are keyed (msgid, n); their specifiers are the
        # singular msgid's (both forms of ours take the same arguments).
        catalog = {(k[0] if isinstance(k, tuple) else k): v
                   for k, v in getattr(cat, "_catalog", {}).items()}
        changed = [k for k, v in catalog.items() if k and k != v]
        ok(len(changed) >= len(template) * 0.9,
           "%s: the compiled catalog translates (%d of %d differ from English)"
           % (lang, len(changed), len(template)))
        bad = [k for k, v in catalog.items() if k and
               sorted(FORMAT.findall(k)) != sorted(FORMAT.findall(v))]
        ok(not bad, "%s: every translation has the original's format specifiers"
           % lang, "\n".join(repr(b) for b in bad[:10]))
    print("1..%d" % len(results))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
