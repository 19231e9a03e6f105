// purple-e2ee v1 written a second time, on WebCrypto only, to check the C
// implementation against docs/PROTOCOL.md from the outside.
// SPDX-License-Identifier: GPL-2.0-or-later
//
//   node webcrypto-interop.mjs run VECTORS.json HELPER
//       TAP output: (a) keys, thumbprints, safety numbers, ECDH and HKDF
//       against the vector file; (b) the vector envelopes opened and
//       re-sealed byte for byte, plus fresh envelopes sealed by HELPER and
//       opened here; (c) envelopes sealed here and opened by HELPER.
//   node webcrypto-interop.mjs generate OUT.json [KEYS.json]
//       writes a new vector file (fixed IVs and message keys); the keys are
//       taken from the vector file KEYS.json where it has them, else fresh.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { webcrypto } from 'node:crypto';

const subtle = (globalThis.crypto ?? webcrypto).subtle;
const getRandomValues = (a) => (globalThis.crypto ?? webcrypto).getRandomValues(a);
const enc = new TextEncoder();

// ---- bytes ----------------------------------------------------------------

const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));
const b64u = (b) => Buffer.from(b).toString('base64url');
function unb64u (s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1)
    throw new Error('not unpadded base64url');
  const out = new Uint8Array(Buffer.from(s, 'base64url'));
  if (b64u(out) !== s)
    throw new Error('non-canonical base64url');
  return out;
}
function concat (...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
const equal = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

// ---- keys -------------------------------------------------------------------

const ALG = { name: 'ECDH', namedCurve: 'P-256' };
const SALT = enc.encode('purple-e2ee/v1');
const INFO_LABEL = enc.encode('purple-e2ee/v1 message key');
const COMMIT_LABEL = enc.encode('purple-e2ee/v1 key commitment');
const SAFETY_LABEL = enc.encode('purple-e2ee/v1 safety number');

async function thumbprint (jwk) {
  // RFC 7638: required members in lexicographic order, no whitespace.
  const canon = `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
  return new Uint8Array(await subtle.digest('SHA-256', enc.encode(canon)));
}

// e2ee_v lists versions 1..64; a v1 envelope has four capability bits, so
// versions above 4 are ignored (not refused).
function capsOf (jwk) {
  let caps = 0;
  for (const v of jwk.e2ee_v ?? [1]) {
    if (!Number.isInteger(v) || v < 1 || v > 64) throw new Error(`e2ee_v ${v}`);
    if (v <= 4) caps |= 1 << (v - 1);
  }
  if (!(caps & 1)) throw new Error('e2ee_v without 1');
  return caps;
}

// A key as both sides use it: WebCrypto handles plus the wire identity.
async function loadKey (jwk, account) {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new Error('not a P-256 JWK');
  for (const m of ['x', 'y'].concat(jwk.d ? ['d'] : []))
    if (unb64u(jwk[m]).length !== 32) throw new Error(`${m} is not 32 bytes`);
  const pub = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  const tp = await thumbprint(jwk);
  if (jwk.kid !== undefined && jwk.kid !== b64u(tp)) throw new Error('kid mismatch');
  return {
    jwk,
    publicKey: await subtle.importKey('jwk', pub, ALG, true, []),
    privateKey: jwk.d
      ? await subtle.importKey('jwk', { ...pub, d: jwk.d }, ALG, false, ['deriveBits'])
      : null,
    thumbprint: tp,
    kid: b64u(tp),
    deviceId: tp.slice(0, 4),
    caps: capsOf(jwk),
    account,
  };
}

async function ecdh (local, remote) {
  return new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: remote.publicKey },
                                                local.privateKey, 256));
}

// An account identifier "<protocol>:<name>" as u16 big-endian length || UTF-8.
function accountField (account) {
  const b = enc.encode(account);
  if (!/^[^:]+:./su.test(account) || b.length > 1024 || /[\u0000-\u001f\u007f]/u.test(account))
    throw new Error(`bad account identifier ${JSON.stringify(account)}`);
  return concat(Uint8Array.of(b.length >> 8, b.length & 0xff), b);
}

// Keys are bound to the accounts they are used on: the sender's and the
// recipient's account identifiers follow the thumbprints.
function kdfInfo (caps, sender, recipient) {
  return concat(INFO_LABEL, Uint8Array.of(caps), sender.thumbprint, recipient.thumbprint,
                accountField(sender.account), accountField(recipient.account));
}

async function hkdf (z, info) {
  const ikm = await subtle.importKey('raw', z, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: SALT, info }, ikm, 256));
}

// K(sender -> recipient); whichever of the two holds a private key is ours.
async function directionKey (sender, recipient, caps) {
  const z = sender.privateKey ? await ecdh(sender, recipient) : await ecdh(recipient, sender);
  return hkdf(z, kdfInfo(caps, sender, recipient));
}

function fingerprintHex (tp) {
  return hex(tp).toUpperCase().match(/.{4}/g).join(' ');
}

async function keyDigits (tp) {
  const d = new Uint8Array(await subtle.digest('SHA-512', concat(SAFETY_LABEL, tp)));
  let s = '';
  for (let c = 0; c < 6; c++) {
    let v = 0n;
    for (let i = 0; i < 5; i++) v = (v << 8n) | BigInt(d[c * 5 + i]);
    s += (v % 100000n).toString().padStart(5, '0');
  }
  return s;
}

async function safetyNumber (a, b) {
  const da = await keyDigits(a.thumbprint), db = await keyDigits(b.thumbprint);
  const all = da <= db ? da + db : db + da;
  return all.match(/.{5}/g).join(' ');
}

// ---- envelope v1 ------------------------------------------------------------

// Fixed header: version << 4 | caps, flags << 5 | (n - 1), sender id (4),
// counter (5); then n recipient ids (4 each), the IV (12), and for n >= 2
// the commitment (32) and n wrapped keys (48 each); body ciphertext || tag.
const FIXED_LEN = 11;
const VERSION = 1;
const FLAG_PADDED = 1;
const MAX_RECIPIENTS = 32;

async function gcmSeal (key, iv, aad, data) {
  const k = await subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt']);
  return new Uint8Array(await subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, k, data));
}

async function gcmOpen (key, iv, aad, data) {
  const k = await subtle.importKey('raw', key, 'AES-GCM', false, ['decrypt']);
  return new Uint8Array(await subtle.decrypt(
    { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, k, data));
}

// All 256 bits of SHA-256(label || message key).
const COMMIT_LEN = 32;
async function commitment (mk) {
  return new Uint8Array(await subtle.digest('SHA-256', concat(COMMIT_LABEL, mk)));
}

function pad (plain, block, extra) {
  const len = (Math.floor((plain.length + 1 + block - 1) / block) + extra) * block;
  const out = new Uint8Array(len);
  out.set(plain);
  out[plain.length] = 0x80;
  return out;
}

function unpad (body) {
  let n = body.length;
  while (n > 0 && body[n - 1] === 0) n--;
  if (n === 0 || body[n - 1] !== 0x80) throw new Error('bad padding');
  return body.slice(0, n - 1);
}

function counterBytes (counter) {
  const c = BigInt(counter);
  return Uint8Array.from([32n, 24n, 16n, 8n, 0n], (s) => Number((c >> s) & 0xffn));
}

// opts: { sender (loaded, private), recipients: [loaded], counter, iv?, mk?,
//         padBlock (0 = none), padExtra }
async function seal (plain, opts) {
  const n = opts.recipients.length;
  if (n < 1 || n > MAX_RECIPIENTS) throw new Error('1 to 32 recipients');
  if (!(opts.sender.caps & 1) || opts.sender.caps > 0x0f) throw new Error('caps');
  const iv = opts.iv ?? getRandomValues(new Uint8Array(12));
  const body = opts.padBlock ? pad(plain, opts.padBlock, opts.padExtra ?? 0) : plain;
  const keys = [];
  for (const r of opts.recipients)
    keys.push(await directionKey(opts.sender, r, opts.sender.caps));
  const flags = opts.padBlock ? FLAG_PADDED : 0;
  const fixed = concat(Uint8Array.of(VERSION << 4 | opts.sender.caps, flags << 5 | (n - 1)),
                       opts.sender.deviceId, counterBytes(opts.counter),
                       ...opts.recipients.map((r) => r.deviceId), iv);
  if (n === 1) {
    const sealed = await gcmSeal(keys[0], iv, fixed, body);
    return concat(fixed, sealed);
  }
  const mk = opts.mk ?? getRandomValues(new Uint8Array(32));
  const header = concat(fixed, await commitment(mk));
  const sealed = await gcmSeal(mk, iv, header, body);
  const wraps = [];
  for (const k of keys)
    wraps.push(await gcmSeal(k, iv, concat(header, sealed), mk));
  return concat(header, ...wraps, sealed);
}

// Returns { plaintext, counter, caps, senderId } or throws.  The key is
// derived with the caps the sender published (§4), not the header's.
async function open (env, me, sender) {
  if (env.length < FIXED_LEN) throw new Error('truncated');
  if (env[0] >> 4 !== VERSION) throw new Error('version');
  const caps = env[0] & 0x0f, flags = env[1] >> 5;
  if (!(caps & 1) || (flags & ~FLAG_PADDED)) throw new Error('flags');
  const n = (env[1] & 0x1f) + 1;   // 1..32: nothing else can be written
  const ivOff = FIXED_LEN + 4 * n;
  const hlen = ivOff + 12 + (n >= 2 ? COMMIT_LEN : 0);
  const bodyOff = hlen + (n >= 2 ? 48 * n : 0);
  if (env.length < bodyOff + 16) throw new Error('truncated');
  if (!equal(env.slice(2, 6), sender.deviceId)) throw new Error('unknown sender');
  const ids = [];
  for (let i = 0; i < n; i++)
    ids.push(hex(env.slice(FIXED_LEN + 4 * i, FIXED_LEN + 4 * (i + 1))));
  if (new Set(ids).size !== n) throw new Error('duplicate recipient');
  const index = ids.indexOf(hex(me.deviceId));
  if (index < 0) throw new Error('not for us');
  const iv = env.slice(ivOff, ivOff + 12);
  const header = env.slice(0, hlen);
  const sealed = env.slice(bodyOff);
  // The caps nibble is authenticated: it is in the AAD, and the key is
  // derived with the caps the sender published.
  const k = await directionKey(sender, me, sender.caps);
  let bodyKey = k;
  if (n >= 2) {
    const wrap = env.slice(hlen + 48 * index, hlen + 48 * (index + 1));
    const mk = await gcmOpen(k, iv, concat(header, sealed), wrap);
    if (!equal(await commitment(mk), env.slice(ivOff + 12, hlen)))
      throw new Error('commitment mismatch');
    bodyKey = mk;
  }
  let plain = await gcmOpen(bodyKey, iv, header, sealed);
  if (flags & FLAG_PADDED) plain = unpad(plain);
  let counter = 0n;
  for (let i = 6; i < 11; i++) counter = (counter << 8n) | BigInt(env[i]);
  return { plaintext: plain, counter, caps };
}

const ARMOR = '?E2E:';
const armor = (env) => ARMOR + b64u(env);
function dearmor (text) {
  const t = text.trim();
  if (!t.startsWith(ARMOR)) throw new Error('not armored');
  return unb64u(t.slice(ARMOR.length));
}

// ---- TAP --------------------------------------------------------------------

let testNo = 0, failures = 0;
function ok (cond, name, detail) {
  testNo++;
  if (cond) console.log(`ok ${testNo} - ${name}`);
  else {
    failures++;
    console.log(`not ok ${testNo} - ${name}`);
    if (detail !== undefined) console.log(`# ${String(detail).split('\n').join('\n# ')}`);
  }
}
async function check (name, fn) {
  try {
    const r = await fn();
    ok(r === undefined || r === true, name, r);
  } catch (e) {
    ok(false, name, e.stack ?? e);
  }
}

// ---- run --------------------------------------------------------------------

async function loadVectors (file) {
  const v = JSON.parse(fs.readFileSync(file, 'utf8'));
  const keys = {};
  for (const [name, jwk] of Object.entries(v.keys)) keys[name] = await loadKey(jwk, v.accounts[name]);
  return { v, keys };
}

function helperRun (helper, args, input) {
  return execFileSync(helper, args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
}

async function run (vectorFile, helper) {
  const { v, keys } = await loadVectors(vectorFile);

  // (a) identities and derivation.
  for (const t of v.identities) {
    await check(`identity ${t.key}: kid, device id, fingerprint`, async () => {
      const k = keys[t.key];
      if (k.kid !== t.kid) return `kid ${k.kid} != ${t.kid}`;
      if (hex(k.thumbprint) !== t.thumbprint_hex) return 'thumbprint';
      if (hex(k.deviceId) !== t.device_id_hex) return 'device id';
      if (fingerprintHex(k.thumbprint) !== t.fingerprint) return 'fingerprint';
      if (k.caps !== t.caps) return 'caps';
    });
  }
  for (const s of v.safety_numbers) {
    await check(`safety number ${s.a}/${s.b}`, async () => {
      const x = await safetyNumber(keys[s.a], keys[s.b]);
      const y = await safetyNumber(keys[s.b], keys[s.a]);
      return x === s.number && y === s.number ? true : `${x} != ${s.number}`;
    });
  }
  for (const d of v.derivations) {
    await check(`derive ${d.sender} -> ${d.recipient}`, async () => {
      const S = keys[d.sender], R = keys[d.recipient];
      const z1 = await ecdh(S, R), z2 = await ecdh(R, S);
      if (hex(z1) !== d.z_hex || hex(z2) !== d.z_hex) return `Z ${hex(z1)} != ${d.z_hex}`;
      if (hex(kdfInfo(d.caps, S, R)) !== d.info_hex) return 'info';
      const k = await hkdf(z1, unhex(d.info_hex));
      return hex(k) === d.key_hex ? true : `K ${hex(k)} != ${d.key_hex}`;
    });
  }

  // (b) envelopes from the vector file: open, and seal again exactly.
  for (const e of v.envelopes) {
    const S = keys[e.sender];
    const R = e.recipients.map((r) => keys[r]);
    await check(`vector ${e.name}: open for each recipient`, async () => {
      for (const r of R) {
        const res = await open(dearmor(e.armored), r, S);
        if (new TextDecoder().decode(res.plaintext) !== e.plaintext) return `plaintext for ${r.kid}`;
        if (res.counter !== BigInt(e.counter)) return 'counter';
      }
    });
    await check(`vector ${e.name}: sealed again byte for byte`, async () => {
      const env = await seal(enc.encode(e.plaintext), {
        sender: S, recipients: R, counter: e.counter, iv: unhex(e.iv_hex),
        mk: e.message_key_hex ? unhex(e.message_key_hex) : undefined,
        padBlock: e.pad_block, padExtra: e.pad_extra_blocks });
      if (hex(env) !== e.envelope_hex) return `envelope differs:\n${hex(env)}\n${e.envelope_hex}`;
      return armor(env) === e.armored ? true : 'armor differs';
    });
  }

  // Fresh keys: one generated by the C code, one by WebCrypto.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'e2ee-interop-'));
  try {
    const cJwk = JSON.parse(helperRun(helper, ['keygen']).toString());
    const wPair = await subtle.generateKey(ALG, true, ['deriveBits']);
    const wJwk = await subtle.exportKey('jwk', wPair.privateKey);
    const wJwk2 = await subtle.exportKey('jwk', (await subtle.generateKey(ALG, true, ['deriveBits'])).privateKey);
    const files = {};
    for (const [name, jwk] of [['c', cJwk], ['w', wJwk], ['w2', wJwk2]]) {
      files[name] = path.join(tmp, `${name}.jwk`);
      fs.writeFileSync(files[name], JSON.stringify(jwk), { mode: 0o600 });
      const pub = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
      files[name + '.pub'] = path.join(tmp, `${name}.pub.jwk`);
      fs.writeFileSync(files[name + '.pub'], JSON.stringify(pub));
    }
    // C's key on one account, both WebCrypto keys on another (two devices).
    const cAcct = 'prpl-jabber:c@example.test', wAcct = 'prpl-jabber:w@example.test';
    const C = await loadKey(cJwk, cAcct), W = await loadKey(wJwk, wAcct);
    const W2 = await loadKey(wJwk2, wAcct);

    await check('fresh keys: same kid in C and WebCrypto', async () => {
      const out = helperRun(helper, ['public', files.w]).toString();
      const pub = JSON.parse(out);
      return pub.kid === W.kid ? true : `${pub.kid} != ${W.kid}`;
    });
    await check('fresh keys: same Z and K in C and WebCrypto', async () => {
      const [z, ks, kr] = helperRun(helper, ['derive', files.c, files['w.pub'], cAcct, wAcct])
        .toString().trim().split('\n');
      const z2 = hex(await ecdh(W, C));
      if (z !== z2) return `Z ${z} != ${z2}`;
      if (ks !== hex(await directionKey(C, W, C.caps))) return 'K(C->W)';
      return kr === hex(await directionKey(W, C, W.caps)) ? true : 'K(W->C)';
    });

    // (b, fresh) sealed by C, opened here.
    for (const [n, pads] of [[1, 0], [2, 0], [1, 32], [2, 16]]) {
      await check(`C seals n=${n} pad=${pads}, WebCrypto opens`, async () => {
        const text = `C to WebCrypto, ${n} recipient(s), ${Date.now()} \u00e9\u2603`;
        const recips = n === 1 ? [files['w.pub']] : [files['w.pub'], files['w2.pub']];
        const armored = helperRun(helper, ['seal', '1234567', String(pads), files.c, cAcct, wAcct,
                                           ...recips],
                                  text).toString();
        if (armored.includes('\n') && !armored.endsWith('\n')) return 'armor spans lines';
        for (const me of n === 1 ? [W] : [W, W2]) {
          const res = await open(dearmor(armored), me, C);
          if (new TextDecoder().decode(res.plaintext) !== text) return 'plaintext differs';
          if (res.counter !== 1234567n) return 'counter';
        }
      });
    }

    // (c) sealed here, opened by C.
    for (const [n, pads] of [[1, 0], [2, 0], [1, 16], [2, 64]]) {
      await check(`WebCrypto seals n=${n} pad=${pads}, C opens`, async () => {
        const text = `WebCrypto to C, ${n} recipient(s) \u00fc ${hex(getRandomValues(new Uint8Array(8)))}`;
        // W2 is W's own other device: a copy on W's account.
        const recips = n === 1 ? [C] : [W2, C];
        const env = await seal(enc.encode(text), { sender: W, recipients: recips,
                                                   counter: 99, padBlock: pads, padExtra: 1 });
        const out = helperRun(helper, ['open', files.c, files['w.pub'], cAcct, wAcct], armor(env) + '\n').toString();
        return out === text ? true : `C opened ${JSON.stringify(out)}`;
      });
    }

    // C must refuse what WebCrypto would also refuse.
    await check('C refuses a tampered WebCrypto envelope', async () => {
      const env = await seal(enc.encode('tamper'), { sender: W, recipients: [W2, C], counter: 5 });
      env[env.length - 20] ^= 1; // inside the body
      try {
        helperRun(helper, ['open', files.c, files['w.pub'], cAcct, wAcct], armor(env));
      } catch (e) {
        return e.status === 1 && /AEAD_TAG|authentication/.test(e.stderr.toString())
          ? true : `exit ${e.status}: ${e.stderr}`;
      }
      return 'accepted';
    });

    // Header values the layout forbids are refused alike on both sides.
    const refusedBy = (env) => {
      try {
        helperRun(helper, ['open', files.c, files['w.pub'], cAcct, wAcct], armor(env));
      } catch (e) {
        return e.status === 1 ? e.stderr.toString() : `exit ${e.status}`;
      }
      return 'accepted';
    };
    const jsRefusal = async (env) => {
      try {
        await open(env, C, W);
      } catch (e) {
        return e.message;
      }
      return 'accepted';
    };
    for (const [what, edit, jsMsg, cMsg] of [
      ['version nibble 0', (e) => { e[0] &= 0x0f; }, /^version$/, /version 0/],
      ['version nibble 2', (e) => { e[0] = 0x20 | (e[0] & 0x0f); }, /^version$/, /version 2/],
      ['caps nibble without v1', (e) => { e[0] &= 0xfe; }, /^flags$/, /lack v1/],
      ['reserved flag bit 1', (e) => { e[1] |= 0x40; }, /^flags$/, /reserved flags/],
      ['reserved flag bit 2', (e) => { e[1] |= 0x80; }, /^flags$/, /reserved flags/],
    ]) {
      await check(`both refuse ${what}`, async () => {
        const env = await seal(enc.encode('header'), { sender: W, recipients: [W2, C], counter: 6 });
        edit(env);
        const j = await jsRefusal(env), c = refusedBy(env);
        if (!jsMsg.test(j)) return `WebCrypto: ${j}`;
        return cMsg.test(c) ? true : `C: ${c}`;
      });
    }
    // Every length here; the C side at each field boundary (and one byte
    // either side), as test-envelope.c already cuts at every length.
    await check('both refuse a truncated envelope', async () => {
      const env = await seal(enc.encode('cut short'), { sender: W, recipients: [W2, C], counter: 8 });
      const ivOff = FIXED_LEN + 4 * 2, hlen = ivOff + 12 + COMMIT_LEN, min = hlen + 48 * 2 + 16;
      const edges = new Set();
      for (const b of [1, 2, 6, FIXED_LEN, ivOff, ivOff + 12, hlen, hlen + 48, hlen + 96,
                       min, env.length])
        for (const cut of [b - 1, b, b + 1]) if (cut >= 0 && cut < env.length) edges.add(cut);
      for (let cut = 0; cut < env.length; cut++) {
        const part = env.slice(0, cut);
        const j = await jsRefusal(part);
        if (j === 'accepted') return `WebCrypto accepted ${cut} bytes`;
        if (!edges.has(cut)) continue;
        const c = refusedBy(part);
        if (c === 'accepted') return `C accepted ${cut} bytes`;
        if (cut >= FIXED_LEN && cut < min && !/shorter than its header/.test(c))
          return `C at ${cut} bytes: ${c}`;
        if (cut >= min && !/AEAD_TAG/.test(c)) return `C at ${cut} bytes: ${c}`;
      }
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  console.log(`1..${testNo}`);
  process.exitCode = failures ? 1 : 0;
}

// ---- generate ---------------------------------------------------------------

async function generate (outFile, keysFile) {
  const names = ['alice', 'alice_laptop', 'bob', 'bob_phone', 'carol'];
  // carol's device also announces later versions: 2 and 4 enter the caps
  // nibble (0x0b), 7 is beyond what v1 carries and is ignored.
  const versions = { carol: [1, 2, 4, 7] };
  const kept = keysFile ? JSON.parse(fs.readFileSync(keysFile, 'utf8')).keys : {};
  const jwks = {};
  for (const name of names) {
    if (kept[name]) {
      jwks[name] = kept[name];
      continue;
    }
    const pair = await subtle.generateKey(ALG, true, ['deriveBits']);
    const j = await subtle.exportKey('jwk', pair.privateKey);
    const tp = await thumbprint(j);
    jwks[name] = { kty: 'EC', crv: 'P-256', x: j.x, y: j.y, d: j.d, kid: b64u(tp),
                   e2ee_v: versions[name] ?? [1] };
  }
  // Two devices each for alice and bob, one account per person.
  const accounts = { alice: 'prpl-jabber:alice@example.org',
                     alice_laptop: 'prpl-jabber:alice@example.org',
                     bob: 'prpl-jabber:bob@example.org', bob_phone: 'prpl-jabber:bob@example.org',
                     carol: 'prpl-irc:carol@irc.example.org' };
  const keys = {};
  for (const name of names) keys[name] = await loadKey(jwks[name], accounts[name]);

  const v = {
    description: 'purple-e2ee protocol v1 test vectors (docs/PROTOCOL.md section 9). ' +
      'Byte strings are lower-case hex unless named otherwise; keys are private JWKs.',
    keys: jwks,
    accounts,
    identities: [],
    safety_numbers: [],
    derivations: [],
    envelopes: [],
  };
  for (const name of names) {
    const k = keys[name];
    v.identities.push({ key: name, kid: k.kid, thumbprint_hex: hex(k.thumbprint),
                        device_id_hex: hex(k.deviceId), fingerprint: fingerprintHex(k.thumbprint),
                        caps: k.caps });
  }
  for (const [a, b] of [['alice', 'bob'], ['alice', 'alice_laptop']])
    v.safety_numbers.push({ a, b, number: await safetyNumber(keys[a], keys[b]) });
  for (const [s, r, caps] of [['alice', 'bob', 1], ['bob', 'alice', 1], ['alice', 'bob', 3]]) {
    const z = await ecdh(keys[s], keys[r]);
    const info = kdfInfo(caps, keys[s], keys[r]);
    v.derivations.push({ sender: s, recipient: r, caps, sender_account: accounts[s],
                         recipient_account: accounts[r], z_hex: hex(z), info_hex: hex(info),
                         key_hex: hex(await hkdf(z, info)) });
  }
  const iv = (seed) => Uint8Array.from({ length: 12 }, (_, i) => (seed + 17 * i) & 0xff);
  const mk = (seed) => Uint8Array.from({ length: 32 }, (_, i) => (seed + 29 * i) & 0xff);
  const envs = [
    { name: 'direct', sender: 'alice', recipients: ['bob'], counter: 16437600000,
      plaintext: 'Hello, Bob!', iv: iv(1), pad_block: 0, pad_extra_blocks: 0 },
    { name: 'direct-empty', sender: 'bob', recipients: ['alice'], counter: 16437600001,
      plaintext: '', iv: iv(2), pad_block: 0, pad_extra_blocks: 0 },
    { name: 'direct-padded', sender: 'alice', recipients: ['bob'], counter: 16437600002,
      plaintext: 'Gr\u00fc\u00dfe aus K\u00f6ln \u{1F44B}', iv: iv(3), pad_block: 32,
      pad_extra_blocks: 2 },
    { name: 'wrapped-3', sender: 'alice', recipients: ['bob', 'bob_phone', 'alice_laptop'],
      counter: 16437600003, plaintext: 'To both of your devices, and a copy for my laptop.',
      iv: iv(4), message_key: mk(5), pad_block: 0, pad_extra_blocks: 0 },
    { name: 'wrapped-2-padded', sender: 'bob', recipients: ['alice', 'alice_laptop'],
      counter: 1099511627775n, plaintext: 'ok', iv: iv(6), message_key: mk(7), pad_block: 16,
      pad_extra_blocks: 1 },
    { name: 'direct-caps-0b', sender: 'carol', recipients: ['bob'], counter: 16437600004,
      plaintext: 'From a device that also speaks v2 and v4.', iv: iv(8), pad_block: 0,
      pad_extra_blocks: 0 },
  ];
  for (const e of envs) {
    const env = await seal(enc.encode(e.plaintext), {
      sender: keys[e.sender], recipients: e.recipients.map((r) => keys[r]), counter: e.counter,
      iv: e.iv, mk: e.message_key, padBlock: e.pad_block, padExtra: e.pad_extra_blocks });
    v.envelopes.push({ name: e.name, sender: e.sender, recipients: e.recipients,
                       counter: Number(e.counter), caps: keys[e.sender].caps,
                       plaintext: e.plaintext, iv_hex: hex(e.iv),
                       message_key_hex: e.message_key ? hex(e.message_key) : null,
                       pad_block: e.pad_block, pad_extra_blocks: e.pad_extra_blocks,
                       envelope_hex: hex(env), armored: armor(env) });
  }
  fs.writeFileSync(outFile, JSON.stringify(v, null, 2) + '\n');
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'run' && rest.length === 2) await run(rest[0], rest[1]);
else if (mode === 'generate' && (rest.length === 1 || rest.length === 2))
  await generate(rest[0], rest[1]);
else {
  console.error('usage: webcrypto-interop.mjs run VECTORS.json HELPER | ' +
                'generate OUT.json [KEYS.json]');
  process.exitCode = 2;
}
