// A second implementation of the protocol v2 core (docs/PROTOCOL.md) on
// WebCrypto (crypto.subtle) alone, checked against tests/vectors/v2-*.json:
// it verifies the prekey record, derives both session starts, and replays
// the whole conversation with the same deterministic random stream, so
// every message it seals must equal the C code's bytes and every message of
// the C code must open (or be refused) as the vector says.  It also seals
// and opens the v2 envelopes of tests/vectors/v2-envelope.json.
// Usage: node v2-webcrypto.mjs <tests/vectors folder> [transcript.json ...]   (TAP)
// SPDX-License-Identifier: GPL-2.0-or-later
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const P256 = { name: 'ECDH', namedCurve: 'P-256' };
const N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (h) => new Uint8Array(Buffer.from(h, 'hex'));
const b64u = (b) => Buffer.from(b).toString('base64url');
const unb64u = (s) => new Uint8Array(Buffer.from(s, 'base64url'));
const cat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
const u32 = (v) => new Uint8Array([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
const u16 = (v) => new Uint8Array([v >>> 8, v & 255]);
const get32 = (b, o) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const sha256 = async (b) => new Uint8Array(await subtle.digest('SHA-256', b));

let count = 0, failed = 0;
function ok(cond, what) {
  count++;
  if (!cond) failed++;
  console.log(`${cond ? 'ok' : 'not ok'} ${count} - ${what}`);
}

// ---- primitives ---------------------------------------------------------
async function hkdf(salt, ikm, info, len) {
  const k = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: salt ?? new Uint8Array(32), info }, k, len * 8));
}
async function hmac(key, data) {
  const k = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await subtle.sign('HMAC', k, data));
}
async function publicKey(point) {
  return subtle.importKey('raw', point, P256, true, []);
}
async function pointOf(key) {
  return new Uint8Array(await subtle.exportKey('raw', key));
}
// A private ECDH key from its 32-byte scalar (PKCS#8 without public part).
async function fromScalar(d) {
  const der = cat(unhex('3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420'), d);
  const priv = await subtle.importKey('pkcs8', der, P256, true, ['deriveBits']);
  const jwk = await subtle.exportKey('jwk', priv);
  const pub = await publicKey(cat([4], unb64u(jwk.x), unb64u(jwk.y)));
  return { priv, pub, point: await pointOf(pub), d };
}
async function fromJwk(json) {
  const jwk = JSON.parse(json);
  const pair = await fromScalar(unb64u(jwk.d));
  pair.tp = await sha256(enc.encode(`{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`));
  return pair;
}
async function dh(priv, pub) {
  return new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: pub }, priv, 256));
}
async function gcm(seal, key, iv, aad, data) {
  const k = await subtle.importKey('raw', key, 'AES-GCM', false, [seal ? 'encrypt' : 'decrypt']);
  const f = seal ? subtle.encrypt : subtle.decrypt;
  return new Uint8Array(await f.call(subtle, { name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, k, data));
}

// The test stream: block i = SHA-256(SHA-256(label) || u64 i).
class Drbg {
  constructor(label) { this.label = label; }
  async init() { this.seed = await sha256(enc.encode(this.label)); this.i = 0n; this.buf = new Uint8Array(0); return this; }
  async take(n) {
    while (this.buf.length < n) {
      const c = new Uint8Array(8);
      new DataView(c.buffer).setBigUint64(0, this.i++);
      this.buf = cat(this.buf, await sha256(cat(this.seed, c)));
    }
    const out = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    return out;
  }
  async scalar() {
    for (;;) {
      const d = await this.take(32);
      const v = BigInt('0x' + hex(d));
      if (v > 0n && v < N) return fromScalar(d);
    }
  }
}

// ---- session start (section 4) ------------------------------------------
function info(mode, tpI, tpR, devI, devR, spkId, verI, verR, acctI, acctR) {
  const a = enc.encode(acctI), b = enc.encode(acctR);
  return cat(enc.encode('PE2E v2 x3dh'), [mode], tpI, tpR, u32(devI), u32(devR), u32(spkId),
             [verI, verR], u16(a.length), a, u16(b.length), b);
}
async function startKeys(ikm, inf) {
  const okm = await hkdf(null, ikm, inf, 64);
  return { root: okm.slice(0, 32), chain: okm.slice(32), sid: await sha256(inf) };
}

// ---- ratchet (sections 5, 6) --------------------------------------------
const kdfRk = async (rk, dhOut) => {
  const o = await hkdf(rk, dhOut, enc.encode('PE2E v2 root'), 64);
  return [o.slice(0, 32), o.slice(32)];
};
const kdfCk = async (ck) => [await hmac(ck, new Uint8Array([1])), await hmac(ck, new Uint8Array([2]))];
const msgKey = (mk) => hkdf(null, mk, enc.encode('PE2E v2 msg'), 32);

class Ratchet {
  static initiator(st, ek, ikPoint, versions, local, remote) {
    return Object.assign(new Ratchet(), {
      initiator: true, sid: st.sid, rk: st.root, dhs: ek, cks: st.chain, ns: 0, pn: 0,
      ckr: null, nr: 0, chains: [], serial: 0, due: false, local, remote,
      prefix: cat([st.mode], ikPoint, u32(st.spkId), [versions]), skipped: [],
    });
  }
  static responder(st, ekPoint, local, remote) {
    return Object.assign(new Ratchet(), {
      initiator: false, sid: st.sid, rk: st.root, dhs: null, cks: null, ns: 0, pn: 0,
      ckr: st.chain, nr: 0, chains: [{ serial: 0, dh: ekPoint }], serial: 1, due: true,
      local, remote, prefix: null, skipped: [],
    });
  }
  async seal(drbg, text) {
    if (this.due) {
      const fresh = await drbg.scalar();
      const cur = this.chains[this.chains.length - 1].dh;
      [this.rk, this.cks] = await kdfRk(this.rk, await dh(fresh.priv, await publicKey(cur)));
      this.pn = this.ns; this.ns = 0; this.dhs = fresh; this.due = false;
    }
    let mk;
    [mk, this.cks] = await kdfCk(this.cks);
    const n = this.ns++;
    const header = cat([2, this.prefix ? 2 : 1, 0], u32(this.local), u32(this.remote), this.dhs.point,
                       u32(this.pn), u32(n), this.prefix ?? [], await drbg.take(12));
    const pt = typeof text === 'string' ? enc.encode(text) : text;
    const ct = await gcm(true, await msgKey(mk), header.slice(-12), cat(this.sid, header), pt);
    return cat(header, ct);
  }
  // Returns {text, n, newChain, skippedKey} or {error}; with raw, text is
  // the plaintext bytes (an envelope slot), not decoded.
  async open(wire, raw = false) {
    const type = wire[1], hl = type === 2 ? 167 : 96;
    if (wire[0] !== 2 || (type !== 1 && type !== 2) || wire[2] !== 0 || wire.length < hl + 16)
      return { error: 'format' };
    if (get32(wire, 7) !== this.local || get32(wire, 3) !== this.remote) return { error: 'device' };
    if (type === 2 && this.initiator) return { error: 'start' };
    const point = wire.slice(11, 76), pn = get32(wire, 76), n = get32(wire, 80);
    try { await publicKey(point); } catch { return { error: 'format' }; }
    const header = wire.slice(0, hl), body = wire.slice(hl);
    const tryOpen = async (mk) => {
      try {
        const pt = await gcm(false, await msgKey(mk), header.slice(-12), cat(this.sid, header), body);
        return raw ? pt : dec.decode(pt);
      } catch { return null; }
    };
    const idx = this.chains.findIndex((c) => eq(c.dh, point));
    const current = idx >= 0 && idx === this.chains.length - 1 && this.ckr !== null;
    if (idx >= 0) {
      const serial = this.chains[idx].serial;
      const k = this.skipped.findIndex((e) => e.serial === serial && e.n === n);
      if (k >= 0) {
        const text = await tryOpen(this.skipped[k].mk);
        if (text === null) return { error: 'tag' };
        this.skipped.splice(k, 1);
        return { text, n, newChain: false, skippedKey: true };
      }
      if (!current || n < this.nr) return { error: 'duplicate' };
    } else if (!this.dhs) return { error: 'start' };
    if (current ? n - this.nr > 1000 : (n > 1000 || (this.ckr && pn > this.nr && pn - this.nr > 1000)))
      return { error: 'skip-limit' };
    const pending = [];
    let ck = this.ckr, rk = this.rk, mk, serial;
    const skip = async (s, from, to) => {
      for (let i = from; i < to; i++) { let m; [m, ck] = await kdfCk(ck); pending.push({ serial: s, n: i, mk: m }); }
    };
    if (current) {
      serial = this.chains[this.chains.length - 1].serial;
      await skip(serial, this.nr, n);
    } else {
      if (this.ckr && pn > this.nr) await skip(this.chains[this.chains.length - 1].serial, this.nr, pn);
      serial = this.serial;
      [rk, ck] = await kdfRk(this.rk, await dh(this.dhs.priv, await publicKey(point)));
      await skip(serial, 0, n);
    }
    [mk, ck] = await kdfCk(ck);
    const text = await tryOpen(mk);
    if (text === null) return { error: 'tag' };
    if (!current) {
      if (this.chains.length === 5) {
        const gone = this.chains.shift().serial;
        this.skipped = this.skipped.filter((e) => e.serial !== gone);
      }
      this.chains.push({ serial: this.serial++, dh: point });
      this.rk = rk; this.cks = null; this.due = true;
    }
    this.ckr = ck; this.nr = n + 1;
    if (this.initiator) this.prefix = null;
    this.skipped.push(...pending);
    while (this.skipped.length > 2000) this.skipped.shift();
    return { text, n, newChain: !current, skippedKey: false };
  }
}

// ---- the checks -----------------------------------------------------------
const dir = process.argv[2];
const load = (name) => JSON.parse(readFileSync(join(dir, name), 'utf8'));

async function checkPrekey() {
  const v = load('v2-prekey.json');
  const rec = unhex(v.record);
  const ik = await fromJwk(v.identity_jwk);
  const sigJwk = JSON.parse(v.signing_jwk);
  ok(sigJwk.alg === 'ES256' && sigJwk.use === 'sig', 'prekey: signing JWK says ES256/sig');
  const sig = await subtle.importKey('jwk', sigJwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  const nver = rec[128];
  const stmt = rec.slice(0, 129 + nver);
  ok(rec.length === 193 + nver, 'prekey: length 193 + nver');
  ok(dec.decode(rec.slice(0, 14)) === 'PE2E v2 prekey' && rec[14] === 1, 'prekey: label and format');
  ok(eq(rec.slice(15, 47), ik.tp), 'prekey: names the identity thumbprint');
  ok(get32(rec, 47) === v.device && get32(rec, 51) === v.prekey_id, 'prekey: device tag and id');
  const spk = await fromScalar(unhex(v.spk_d));
  ok(eq(rec.slice(55, 120), spk.point), 'prekey: the prekey point is the one of spk_d');
  ok(Number(new DataView(rec.buffer, rec.byteOffset + 120, 8).getBigUint64(0)) === v.expires,
     'prekey: expiry');
  ok(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, sig, rec.slice(129 + nver), stmt),
     'prekey: WebCrypto verifies the P1363 signature');
  const bad = stmt.slice();
  bad[60] ^= 1;
  ok(!(await subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, sig, rec.slice(129 + nver), bad)),
     'prekey: a changed statement does not verify');
}

async function checkX3dh() {
  const v = load('v2-x3dh.json');
  const a = await fromJwk(v.initiator_identity_jwk), b = await fromJwk(v.responder_identity_jwk);
  const spk = await fromScalar(unhex(v.prekey_d));
  for (const mode of [1, 2]) {
    const ek = await fromScalar(unhex(v[`mode${mode}_ephemeral_d`]));
    const inf = info(mode, a.tp, b.tp, v.initiator_device, v.responder_device, mode === 1 ? v.prekey_id : 0,
                     v.initiator_versions, v.responder_versions, v.initiator_account, v.responder_account);
    const ikmI = mode === 1
      ? cat(await dh(a.priv, spk.pub), await dh(ek.priv, b.pub), await dh(ek.priv, spk.pub))
      : cat(await dh(a.priv, b.pub), await dh(ek.priv, b.pub));
    const ikmR = mode === 1
      ? cat(await dh(spk.priv, a.pub), await dh(b.priv, ek.pub), await dh(spk.priv, ek.pub))
      : cat(await dh(b.priv, a.pub), await dh(b.priv, ek.pub));
    const ki = await startKeys(ikmI, inf), kr = await startKeys(ikmR, inf);
    ok(hex(ki.root) === v[`mode${mode}_root`] && hex(ki.chain) === v[`mode${mode}_chain`]
       && hex(ki.sid) === v[`mode${mode}_sid`], `x3dh mode ${mode}: initiator side matches the vector`);
    ok(eq(ki.root, kr.root) && eq(ki.chain, kr.chain), `x3dh mode ${mode}: responder side agrees`);
  }
}

// Replays a conversation file: the vector, or one written by v2-transcript.
async function checkConversation(v, name) {
  const a = await fromJwk(v.alice_identity_jwk), b = await fromJwk(v.bob_identity_jwk);
  const drbg = await new Drbg(v.stream_label ?? 'vector run').init();
  await drbg.scalar();                  // Bob's signing key
  const spk = await drbg.scalar();      // Bob's prekey (id 9, versions {2})
  const inf = info(1, a.tp, b.tp, v.alice_device, v.bob_device, 9, 2, 2, v.alice_account, v.bob_account);
  let alice, bob;
  // Alice starts a session; Bob builds his side from her message alone.
  const start = async (text, wireHex) => {
    const ek = await drbg.scalar();
    const ka = await startKeys(cat(await dh(a.priv, spk.pub), await dh(ek.priv, b.pub),
                                   await dh(ek.priv, spk.pub)), inf);
    alice = Ratchet.initiator({ ...ka, mode: 1, spkId: 9 }, ek, a.point, 2, v.alice_device, v.bob_device);
    const first = await alice.seal(drbg, text);
    const ekPoint = first.slice(11, 76), ikI = await publicKey(first.slice(85, 150));
    const kb = await startKeys(cat(await dh(spk.priv, ikI), await dh(b.priv, await publicKey(ekPoint)),
                                   await dh(spk.priv, await publicKey(ekPoint))), inf);
    bob = Ratchet.responder({ ...kb }, ekPoint, v.bob_device, v.alice_device);
    return hex(first) === wireHex && (await bob.open(first)).text === text;
  };
  ok(await start(v.first_plaintext, v.first_wire), `${name}: the start message is byte-identical and opens`);
  const wire = [], texts = [];
  let sends = 0, sameSeal = 0, deliveries = 0, sameOpen = 0, restarts = 0;
  for (const e of v.events) {
    if (e.restart) {
      restarts++;
      ok(await start(e.plaintext, e.wire), `${name}: the restart message is byte-identical and opens`);
    } else if (e.send) {
      const c = await (e.send === 'alice' ? alice : bob).seal(drbg, e.plaintext);
      wire[e.id] = unhex(e.wire);
      texts[e.id] = e.plaintext;
      sends++;
      if (hex(c) === e.wire) sameSeal++;
      else console.log(`# ${name}: message ${e.id} differs`);
    } else {
      const r = await (e.deliver === 'alice' ? alice : bob).open(wire[e.id]);
      deliveries++;
      const same = e.result === 'opened'
        ? r.text === texts[e.id] && r.n === e.n && r.newChain === e.new_chain && r.skippedKey === e.skipped_key
        : r.error === e.result;
      if (same) sameOpen++;
      else console.log(`# ${name}: delivery of ${e.id}: C ${e.result}, WebCrypto ${r.error ?? 'opened'}`);
    }
  }
  ok(sends > 0 && sameSeal === sends, `${name}: all ${sends} messages sealed byte for byte`);
  ok(deliveries > 0 && sameOpen === deliveries,
     `${name}: all ${deliveries} deliveries opened or refused as the C code did`);
  if (v.stream_label) ok(restarts === 1, `${name}: one session restart`);
  // Tampering with any header byte of a message Bob has not read yet.
  const extra = await alice.seal(drbg, 'one more');
  let refused = 0;
  for (let i = 0; i < 96; i++) {
    const m = extra.slice();
    m[i] ^= 1;
    const probe = Object.assign(Object.create(Ratchet.prototype), structuredClone({ ...bob, dhs: null }));
    probe.dhs = bob.dhs;
    if ((await probe.open(m)).error) refused++;
  }
  ok(refused === 96, `${name}: every altered header byte is refused`);
  ok((await bob.open(extra)).text === 'one more', `${name}: the unaltered message opens`);
}

// ---- v2 envelope (notes/spec-envelope-v2.md) -----------------------------
const ENV_BODY = enc.encode('PE2E v2 body'), ENV_HASH = enc.encode('PE2E v2 body hash');

function envParse(w) {
  if (w.length < 1 || (w[0] & ~3) !== 0x20) return null;
  const multi = (w[0] & 1) !== 0, padded = (w[0] & 2) !== 0;
  if (!multi) return { multi, padded, slots: [w.slice(1)] };
  if (w.length < 34) return null;
  const n = w[1], iv = w.slice(2, 14), len = get32(w, 14), bodyEnd = 18 + len + 16;
  if (n < 2 || n > 32 || len > 65536 || w.length < bodyEnd) return null;
  const slots = [];
  let o = bodyEnd;
  for (let i = 0; i < n; i++) {
    if (w.length - o < 2) return null;
    const l = (w[o] << 8) | w[o + 1];
    if (w.length - o - 2 < l) return null;
    slots.push(w.slice(o + 2, o + 2 + l));
    o += 2 + l;
  }
  return o === w.length ? { multi, padded, n, iv, bodyEnd, slots } : null;
}
function envUnpad(b) {
  let n = b.length;
  while (n > 0 && b[n - 1] === 0) n--;
  return n > 0 && b[n - 1] === 0x80 ? b.slice(0, n - 1) : null;
}
// Opens slot @slot with @r (which advances on success of its slot, as a
// copy would).  Returns {text, slotPlain} or {error}.
async function envOpen(r, w, slot) {
  const e = envParse(w);
  if (!e || slot >= e.slots.length) return { error: 'envelope' };
  const o = await r.open(e.slots[slot], true);
  if (o.error) return o;
  let body = o.text;
  if (e.multi) {
    if (body.length !== 64) return { error: 'envelope' };
    if (!eq(await sha256(cat(ENV_HASH, w.slice(0, e.bodyEnd))), body.slice(32))) return { error: 'envelope' };
    try {
      body = await gcm(false, o.text.slice(0, 32), e.iv, cat(w.slice(0, 2), ENV_BODY), w.slice(18, e.bodyEnd));
    } catch { return { error: 'envelope' }; }
  }
  if (e.padded && !(body = envUnpad(body))) return { error: 'trailing' };
  if (body.includes(0)) return { error: 'trailing' };
  try { return { text: dec.decode(body), slotPlain: o.text }; } catch { return { error: 'trailing' }; }
}
async function envSeal(drbg, sessions, text, block) {
  const t = enc.encode(text);
  let body = t;
  if (block) {
    const base = Math.ceil((t.length + 1) / block) * block;
    const extra = Math.min((await drbg.take(1))[0] % 4, Math.floor((65536 - base) / block));
    body = new Uint8Array(base + extra * block);
    body.set(t);
    body[t.length] = 0x80;
  }
  const flag = 0x20 | (block ? 2 : 0) | (sessions.length > 1 ? 1 : 0);
  if (sessions.length === 1) return cat([flag], await sessions[0].seal(drbg, body));
  const mk = await drbg.take(32), iv = await drbg.take(12);
  const head = cat([flag, sessions.length], iv, u32(body.length));
  const headBody = cat(head, await gcm(true, mk, iv, cat(head.slice(0, 2), ENV_BODY), body));
  const slotPlain = cat(mk, await sha256(cat(ENV_HASH, headBody)));
  const parts = [headBody];
  for (const s of sessions) {
    const m = await s.seal(drbg, slotPlain);
    parts.push(u16(m.length), m);
  }
  return cat(...parts);
}
const probeOf = (r) => {
  const p = Object.assign(Object.create(Ratchet.prototype), structuredClone({ ...r, dhs: null }));
  p.dhs = r.dhs;
  return p;
};

// tests/vectors/v2-envelope.json: Alice's sessions are started from the
// stream and every envelope is sealed again byte for byte; each recipient
// builds its session from the first slot for it and opens every listed slot.
async function checkEnvelope(v) {
  const a = await fromJwk(v.alice_identity_jwk);
  const drbg = await new Drbg('envelope vector run').init();
  const recips = {}, sent = {}, got = {};
  for (const r of v.recipients) {
    const me = await fromJwk(r.identity_jwk), spk = await fromScalar(unhex(r.prekey_d));
    recips[r.name] = { ...r, me, spk };
    const ek = await drbg.scalar();
    const inf = info(1, a.tp, me.tp, v.alice_device, r.device, r.prekey_id, 2, 2, v.alice_account, r.account);
    const ka = await startKeys(cat(await dh(a.priv, spk.pub), await dh(ek.priv, me.pub), await dh(ek.priv, spk.pub)), inf);
    sent[r.name] = Ratchet.initiator({ ...ka, mode: 1, spkId: r.prekey_id }, ek, a.point, 2, v.alice_device, r.device);
  }
  // Bob's (or the phone's) half, from a start slot alone.
  const respond = async (r, msg) => {
    const ikI = msg.slice(85, 150), ek = await publicKey(msg.slice(11, 76)), devI = get32(msg, 3);
    ok(msg[1] === 2 && eq(ikI, a.point), `envelope: ${r.name}'s first slot is a start naming Alice`);
    const inf = info(msg[84], a.tp, r.me.tp, devI, r.device, get32(msg, 150), msg[154], 2, v.alice_account, r.account);
    const kb = await startKeys(cat(await dh(r.spk.priv, await publicKey(ikI)), await dh(r.me.priv, ek),
                                   await dh(r.spk.priv, ek)), inf);
    return Ratchet.responder(kb, msg.slice(11, 76), r.device, devI);
  };
  let multiSeen = 0;
  for (const [k, e] of v.envelopes.entries()) {
    const w = unhex(e.wire), parsed = envParse(w);
    const from = e.from === 'alice' ? e.opened_by.map((o) => sent[o.recipient]) : [got[e.from]];
    ok(hex(await envSeal(drbg, from, e.plaintext, e.pad_block)) === e.wire,
       `envelope ${k} (${e.layout}${e.pad_block ? ', padded' : ''}): sealed byte for byte`);
    for (const o of e.opened_by) {
      let r;
      if (o.recipient === 'alice') r = sent[e.from];
      else r = got[o.recipient] ??= await respond(recips[o.recipient], parsed.slots[o.slot]);
      if (e.layout === 'multi' && o.slot === 0) {
        // a co-recipient who knows MK makes its own body: refused by the hash
        const res = await envOpen(probeOf(r), w, o.slot);
        const forgedHead = cat(w.slice(0, 14), u32(6));
        const fb = cat(forgedHead, await gcm(true, res.slotPlain.slice(0, 32), w.slice(2, 14),
                                             cat(w.slice(0, 2), ENV_BODY), enc.encode('forged')));
        const forged = cat(fb, w.slice(parsed.bodyEnd));
        ok((await envOpen(probeOf(r), forged, o.slot)).error === 'envelope',
           `envelope ${k}: a body made with MK by a co-recipient is refused (body hash)`);
        let refused = 0;
        for (let i = 0; i < parsed.bodyEnd; i++) {
          const m = w.slice();
          m[i] ^= 1;
          if ((await envOpen(probeOf(r), m, o.slot)).error) refused++;
        }
        ok(refused === parsed.bodyEnd, `envelope ${k}: each of the ${parsed.bodyEnd} head and body bytes flipped is refused`);
      }
      const res = await envOpen(r, w, o.slot);
      ok(res.text === e.plaintext, `envelope ${k}: ${o.recipient} opens slot ${o.slot}`);
      if (e.body_key) {
        multiSeen++;
        ok(hex(res.slotPlain) === e.body_key + e.body_hash, `envelope ${k}: ${o.recipient}'s slot carries MK and the body hash`);
      }
      ok((await envOpen(probeOf(r), w, o.slot)).error === 'duplicate', `envelope ${k}: again for ${o.recipient} is a duplicate`);
    }
  }
  ok(multiSeen >= 4, 'envelope: multi envelopes opened by two recipients each');
}

console.log('TAP version 13');
try {
  await checkPrekey();
  await checkX3dh();
  await checkConversation(load('v2-conversation.json'), 'conversation');
  await checkEnvelope(load('v2-envelope.json'));
  for (const f of process.argv.slice(3))
    await checkConversation(JSON.parse(readFileSync(f, 'utf8')), f.split('/').pop());
} catch (e) {
  ok(false, `exception: ${e.stack}`);
}
console.log(`1..${count}`);
process.exit(failed ? 1 : 0);
