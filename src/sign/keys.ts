// Signing keys, ECDSA P-256 (what cosign generates). Private keys are read from PEM: cosign's own
// encrypted format ("ENCRYPTED SIGSTORE PRIVATE KEY" / "ENCRYPTED COSIGN PRIVATE KEY": a JSON envelope with
// scrypt as KDF and NaCl secretbox as cipher around a PKCS#8 DER key, password from COSIGN_PASSWORD),
// unencrypted PKCS#8 ("PRIVATE KEY", e.g. `openssl ecparam -genkey -name prime256v1 | openssl pkcs8 -topk8
// -nocrypt`), SEC1 ("EC PRIVATE KEY") and password-encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY"). Public keys
// are PKIX PEM ("PUBLIC KEY"), as cosign.pub is. `kiln sign --generate-key` writes the cosign format.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import nacl from 'tweetnacl';
import { UserError } from '../../base/errors.js';

export class KeyError extends UserError {}

const COSIGN_PEM_TYPES = ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY'];
/** The scrypt parameter sets cosign (go-securesystemslib) accepts: legacy, standard (its default), OWASP. */
const SCRYPT_PARAMS = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 },
];

function pemBlock(text: string, path: string): { type: string; body: Buffer } {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) throw new KeyError(`${path}: not a PEM key file`);
  const lines = m[2]!.split(/\r?\n/).filter((l) => l && !l.includes(':'));
  return { type: m[1]!, body: Buffer.from(lines.join(''), 'base64') };
}

function scryptKey(password: Buffer, salt: Buffer, p: { N: number; r: number; p: number }): Buffer {
  return scryptSync(password, salt, 32, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 });
}

/** Decrypts cosign's envelope: {"kdf":{"name":"scrypt","params":{N,r,p},"salt"},"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}. */
export function decryptCosignKey(envelope: Buffer, password: Buffer, path: string): Buffer {
  let doc: any;
  try {
    doc = JSON.parse(envelope.toString('utf8'));
  } catch {
    throw new KeyError(`${path}: not a cosign encrypted key (bad envelope)`);
  }
  if (doc?.kdf?.name !== 'scrypt' || doc?.cipher?.name !== 'nacl/secretbox') throw new KeyError(`${path}: unsupported key encryption (${doc?.kdf?.name}/${doc?.cipher?.name})`);
  const params = SCRYPT_PARAMS.find((s) => s.N === doc.kdf.params?.N && s.r === doc.kdf.params?.r && s.p === doc.kdf.params?.p);
  if (!params) throw new KeyError(`${path}: unsupported scrypt parameters`);
  const key = scryptKey(password, Buffer.from(doc.kdf.salt, 'base64'), params);
  const nonce = Buffer.from(doc.cipher.nonce, 'base64');
  if (nonce.length !== 24) throw new KeyError(`${path}: bad nonce size`);
  const plain = nacl.secretbox.open(new Uint8Array(Buffer.from(doc.ciphertext, 'base64')), new Uint8Array(nonce), new Uint8Array(key));
  if (!plain) throw new KeyError(`${path}: cannot decrypt the key: wrong password (COSIGN_PASSWORD)?`);
  return Buffer.from(plain);
}

export function encryptCosignKey(pkcs8Der: Buffer, password: Buffer): Buffer {
  const params = SCRYPT_PARAMS[1]!;
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const key = scryptKey(password, salt, params);
  const sealed = nacl.secretbox(new Uint8Array(pkcs8Der), new Uint8Array(nonce), new Uint8Array(key));
  return Buffer.from(
    JSON.stringify({
      kdf: { name: 'scrypt', params, salt: salt.toString('base64') },
      cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
      ciphertext: Buffer.from(sealed).toString('base64'),
    }),
  );
}

function password(): Buffer | undefined {
  const p = process.env.COSIGN_PASSWORD;
  return p === undefined ? undefined : Buffer.from(p);
}

function checkP256(key: KeyObject, path: string): KeyObject {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KeyError(`${path}: expected an ECDSA P-256 key, got ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` (${key.asymmetricKeyDetails.namedCurve})` : ''}`);
  }
  return key;
}

function readKeyText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new KeyError(`cannot read key file ${path}`);
  }
}

export function loadPrivateKey(path: string): KeyObject {
  const text = readKeyText(path);
  const block = pemBlock(text, path);
  try {
    if (COSIGN_PEM_TYPES.includes(block.type)) {
      const pw = password();
      if (pw === undefined) throw new KeyError(`${path} is encrypted: set COSIGN_PASSWORD (may be empty) to its password`);
      return checkP256(createPrivateKey({ key: decryptCosignKey(block.body, pw, path), format: 'der', type: 'pkcs8' }), path);
    }
    if (block.type === 'ENCRYPTED PRIVATE KEY') {
      const pw = password();
      if (pw === undefined) throw new KeyError(`${path} is encrypted: set COSIGN_PASSWORD to its password`);
      return checkP256(createPrivateKey({ key: text, format: 'pem', passphrase: pw }), path);
    }
    if (block.type === 'PRIVATE KEY' || block.type === 'EC PRIVATE KEY') return checkP256(createPrivateKey({ key: text, format: 'pem' }), path);
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new KeyError(`${path}: cannot read the private key: ${(err as Error).message}`);
  }
  throw new KeyError(`${path}: unsupported PEM type "${block.type}" (expected a private key)`);
}

export function loadPublicKey(path: string): KeyObject {
  const text = readKeyText(path);
  const block = pemBlock(text, path);
  try {
    if (block.type === 'PUBLIC KEY') return checkP256(createPublicKey({ key: text, format: 'pem' }), path);
    // A private key file also gives its public key.
    return checkP256(createPublicKey(loadPrivateKey(path)), path);
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new KeyError(`${path}: cannot read the public key: ${(err as Error).message}`);
  }
}

/** Writes PREFIX.key (cosign's encrypted format, password COSIGN_PASSWORD or empty) and PREFIX.pub. */
export function generateKeyFiles(prefix: string): { privatePath: string; publicPath: string } {
  const privatePath = `${prefix}.key`;
  const publicPath = `${prefix}.pub`;
  for (const p of [privatePath, publicPath]) if (existsSync(p)) throw new KeyError(`${p} already exists: refusing to overwrite it`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const envelope = encryptCosignKey(der, password() ?? Buffer.alloc(0));
  const pem = (type: string, body: Buffer) => `-----BEGIN ${type}-----\n${body.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ${type}-----\n`;
  writeFileSync(privatePath, pem('ENCRYPTED SIGSTORE PRIVATE KEY', envelope), { mode: 0o600 });
  writeFileSync(publicPath, publicKey.export({ format: 'pem', type: 'spki' }).toString());
  return { privatePath, publicPath };
}
