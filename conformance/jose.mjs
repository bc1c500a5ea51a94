// panva's jose, as an EHR or an auditor uses it with llr-asp.
//   node jose.mjs verify   stdin {"jwks": <JWKS>, "jws": "<compact JWS>"}
//     -> {"ok": true, "alg", "kid", "payload"} or {"ok": false, "error": "<jose's code>"}
//   node jose.mjs token    stdin {"claims": {...}, "use": "sig"|"enc"|null, "kid": "..."}
//     -> {"token": "<ES384 JWT signed with a fresh key>", "jwks": {"keys": [<its public JWK>]}}
import * as jose from 'jose';

const read = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
};
const input = await read();
let out;
if (process.argv[2] === 'verify') {
  try {
    const keys = jose.createLocalJWKSet(input.jwks);
    const { payload, protectedHeader } = await jose.compactVerify(input.jws, keys);
    out = { ok: true, alg: protectedHeader.alg, kid: protectedHeader.kid,
            payload: JSON.parse(new TextDecoder().decode(payload)) };
  } catch (err) {
    out = { ok: false, error: err.code ?? String(err) };
  }
} else if (process.argv[2] === 'token') {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: input.kid, alg: 'ES384',
                ...(input.use ? { use: input.use } : {}) };
  const token = await new jose.SignJWT(input.claims)
    .setProtectedHeader({ alg: 'ES384', kid: input.kid, typ: 'JWT' })
    .sign(privateKey);
  out = { token, jwks: { keys: [jwk] } };
} else {
  console.error('usage: node jose.mjs verify|token < input.json');
  process.exit(2);
}
process.stdout.write(JSON.stringify(out));
