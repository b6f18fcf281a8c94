// Test certificates made with the `openssl` command in a fresh temp folder:
// a CA, server certificates it signed (good, expired, wrong name), a second
// unrelated CA with a server certificate of its own, and client certificates
// for mTLS. Keys are EC P-256 (fast to make and to use). Works with
// OpenSSL 1.1.1 and 3.x: the expired certificate is made with `openssl ca
// -startdate/-enddate` (x509 -not_before needs 3.4).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  /** PEM file paths */
  cert: string;
  key: string;
  /** PEM texts */
  certPem: string;
  keyPem: string;
}

export interface TestCerts {
  dir: string;
  /** The CA the gateway is told to trust. */
  ca: CertFiles;
  /** Signed by `ca`, SAN DNS:localhost, IP:127.0.0.1, valid now (CN=localhost). */
  server: CertFiles;
  /** Same names, signed by `ca`, valid 2020-01-01 to 2020-01-02 only. */
  expired: CertFiles;
  /** Signed by `ca`, valid now, SAN DNS:wrong.example only (no IP). */
  wrongName: CertFiles;
  /** A second CA, unrelated to `ca`. */
  otherCa: CertFiles;
  /** Signed by `otherCa`, SAN DNS:localhost, IP:127.0.0.1, valid now: "unknown CA" for a gateway trusting `ca`. */
  otherServer: CertFiles;
  /** Client certificate signed by `ca`, CN=meshgate-client (extendedKeyUsage clientAuth). */
  client: CertFiles;
  /** A second client certificate signed by `ca`, CN=meshgate-client-2 (for reload tests). */
  client2: CertFiles;
  /** Removes the folder. */
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr?.toString() || err.message}`);
  }
}

const EXTENSIONS = `
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
authorityKeyIdentifier = keyid

[wrong_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
`;

/** Generates every certificate (about a dozen openssl runs, well under a second). */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-tls-'));
  try {
    // A config of our own: independent of the system's openssl.cnf.
    const cnf = join(dir, 'openssl.cnf');
    writeFileSync(
      cnf,
      `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused

[ca]
default_ca = test_ca

[test_ca]
dir = ${dir}/ca-db
database = ${dir}/ca-db/index.txt
new_certs_dir = ${dir}/ca-db/new
serial = ${dir}/ca-db/serial
default_md = sha256
policy = any_policy
unique_subject = no
copy_extensions = none
email_in_dn = no

[any_policy]
commonName = supplied
${EXTENSIONS}`,
    );
    mkdirSync(join(dir, 'ca-db', 'new'), { recursive: true });
    writeFileSync(join(dir, 'ca-db', 'index.txt'), '');
    writeFileSync(join(dir, 'ca-db', 'serial'), '1000\n');

    const newKey = (name: string): string => {
      const key = join(dir, `${name}.key`);
      openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], dir);
      return key;
    };
    const files = (name: string): CertFiles => {
      const cert = join(dir, `${name}.pem`);
      const key = join(dir, `${name}.key`);
      return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
    };
    const makeCa = (name: string, cn: string): CertFiles => {
      const key = newKey(name);
      openssl(['req', '-config', cnf, '-new', '-x509', '-key', key, '-sha256', '-days', '3650', '-subj', `/CN=${cn}`, '-extensions', 'ca_ext', '-out', join(dir, `${name}.pem`)], dir);
      return files(name);
    };
    const csr = (name: string, cn: string): string => {
      const key = newKey(name);
      const out = join(dir, `${name}.csr`);
      openssl(['req', '-config', cnf, '-new', '-key', key, '-sha256', '-subj', `/CN=${cn}`, '-out', out], dir);
      return out;
    };
    let serial = 1;
    const sign = (name: string, cn: string, ca: CertFiles, ext: string): CertFiles => {
      const req = csr(name, cn);
      openssl(
        ['x509', '-req', '-in', req, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(0x5000 + serial++), '-days', '825', '-sha256', '-extfile', cnf, '-extensions', ext, '-out', join(dir, `${name}.pem`)],
        dir,
      );
      return files(name);
    };

    const ca = makeCa('ca', 'meshgate test CA');
    const otherCa = makeCa('other-ca', 'meshgate unrelated CA');
    const server = sign('server', 'localhost', ca, 'server_ext');
    const wrongName = sign('wrong-name', 'wrong.example', ca, 'wrong_ext');
    const otherServer = sign('other-server', 'localhost', otherCa, 'server_ext');
    const client = sign('client', 'meshgate-client', ca, 'client_ext');
    const client2 = sign('client2', 'meshgate-client-2', ca, 'client_ext');
    // Expired: `openssl ca` takes explicit start and end dates.
    const expiredCsr = csr('expired', 'localhost');
    openssl(
      ['ca', '-config', cnf, '-batch', '-notext', '-md', 'sha256', '-cert', ca.cert, '-keyfile', ca.key, '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extfile', cnf, '-extensions', 'server_ext', '-in', expiredCsr, '-out', join(dir, 'expired.pem')],
      dir,
    );
    const expired = files('expired');
    return {
      dir,
      ca,
      server,
      expired,
      wrongName,
      otherCa,
      otherServer,
      client,
      client2,
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
