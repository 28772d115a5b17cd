/**
 * The SSH handshake alone, per algorithm choice: connects to one host over and over (TCP, key exchange,
 * host key, user authentication, then `end()` and the wait for the server's close), rounds of every
 * variant interleaved so the machine's load hits them alike, and prints per variant the median and
 * quartiles of wall time and of this process's CPU time (less sensitive to other processes than wall
 * time), with what was negotiated and how many packets each side sent.
 *
 *   node dist/bench/bench/handshake.js --address 127.0.0.2 --port 41161 \
 *        --identity /tmp/pgplay-sshd-xxx/id_ed25519 --known-hosts /tmp/pgplay-bench-xxx/known_hosts [--rounds 30]
 *
 * The host key is checked against --known-hosts (as pgplay does; a mismatch fails the bench). The
 * variants pin one algorithm family at a time; "default" is ssh2's order, which is what pgplay offers
 * (pgplay only narrows the host key algorithms to those known_hosts has for the host).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import type { Algorithms, ConnectConfig } from 'ssh2';

interface Variant {
  name: string;
  algorithms?: Algorithms;
}

const VARIANTS: Variant[] = [
  { name: 'default (ssh2 order, what pgplay offers)' },
  { name: 'kex ecdh-sha2-nistp256', algorithms: { kex: ['ecdh-sha2-nistp256'] } },
  { name: 'kex diffie-hellman-group14-sha256', algorithms: { kex: ['diffie-hellman-group14-sha256'] } },
  { name: 'cipher chacha20-poly1305', algorithms: { cipher: ['chacha20-poly1305@openssh.com'] } },
  { name: 'cipher aes128-ctr + hmac-sha2-256-etm', algorithms: { cipher: ['aes128-ctr'], hmac: ['hmac-sha2-256-etm@openssh.com'] } },
  { name: 'host key ecdsa-sha2-nistp256', algorithms: { serverHostKey: ['ecdsa-sha2-nistp256'] } },
  { name: 'host key rsa-sha2-512', algorithms: { serverHostKey: ['rsa-sha2-512'] } },
];

interface Sample {
  wallMs: number;
  cpuMs: number;
  negotiated: string;
  packetsOut: number;
  packetsIn: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string' },
      port: { type: 'string', default: '22' },
      user: { type: 'string', default: 'root' },
      identity: { type: 'string' },
      'known-hosts': { type: 'string' },
      rounds: { type: 'string', default: '30' },
    },
  });
  if (!values.address || !values.identity || !values['known-hosts']) {
    throw new Error('usage: handshake.js --address A --port P --identity KEY --known-hosts FILE [--user U] [--rounds N]');
  }
  const known = knownKeys(values['known-hosts'], values.address, Number(values.port));
  const base: ConnectConfig = {
    host: values.address,
    port: Number(values.port),
    username: values.user,
    privateKey: readFileSync(values.identity),
    agent: undefined,
    readyTimeout: 15_000,
  };
  const rounds = Number(values.rounds);
  // One untimed handshake per variant first (module loading, JIT); a variant the server cannot agree to
  // (e.g. a host key type it does not have) is reported and left out.
  const variants: Variant[] = [];
  for (const v of VARIANTS) {
    try {
      await handshake(base, v, known);
      variants.push(v);
    } catch (e) {
      process.stdout.write(`left out: ${v.name}: ${(e as Error).message}\n`);
    }
  }
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) samples.get(v.name)!.push(await handshake(base, v, known));
  }
  const rows = variants.map((v) => {
    const s = samples.get(v.name)!;
    const wall = quartiles(s.map((x) => x.wallMs));
    const cpu = quartiles(s.map((x) => x.cpuMs));
    return `| ${v.name} | ${fmt(wall)} | ${fmt(cpu)} | ${s[0]!.packetsOut} / ${s[0]!.packetsIn} | ${s[0]!.negotiated} |`;
  });
  process.stdout.write(
    [
      `${rounds} rounds, variants interleaved; median (p25–p75) in ms`,
      '',
      '| variant | wall | CPU of this process | packets out / in | negotiated (kex, host key, cipher c→s, mac c→s) |',
      '|---|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'),
  );
}

function handshake(base: ConnectConfig, variant: Variant, known: Set<string>): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let negotiated = '?';
    let packetsOut = 0;
    let packetsIn = 0;
    const startCpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    client.on('handshake', (n) => {
      negotiated = `${n.kex}, ${n.serverHostKey}, ${n.cs.cipher}, ${n.cs.mac || '(aead)'}`;
    });
    client.once('ready', () => client.end());
    client.once('error', (e) => {
      client.destroy();
      reject(e);
    });
    client.once('close', () => {
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      const cpu = process.cpuUsage(startCpu);
      resolve({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000, negotiated, packetsOut, packetsIn });
    });
    client.connect({
      ...base,
      algorithms: variant.algorithms,
      hostVerifier: (key: Buffer) => known.has(key.toString('base64')),
      // ssh2's debug lines name each packet it sends and receives: counted, not printed.
      debug: (line: string) => {
        if (line.startsWith('Outbound:')) packetsOut++;
        else if (line.startsWith('Inbound:')) packetsIn++;
      },
    });
    client.setNoDelay(true);
  });
}

/** The base64 keys known_hosts lists for [address]:port (or the bare address on port 22), any type. */
function knownKeys(file: string, address: string, port: number): Set<string> {
  const name = port === 22 ? address : `[${address}]:${port}`;
  const keys = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [hosts, , key] = line.trim().split(/\s+/);
    if (hosts && key && hosts.split(',').includes(name)) keys.add(key);
  }
  if (keys.size === 0) throw new Error(`${file} has no key for ${name}`);
  return keys;
}

function quartiles(values: number[]): [number, number, number] {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
  return [at(0.25), at(0.5), at(0.75)];
}

function fmt([p25, median, p75]: [number, number, number]): string {
  return `${median.toFixed(1)} (${p25.toFixed(1)}–${p75.toFixed(1)})`;
}

main().catch((e: unknown) => {
  process.stderr.write(`handshake: ${(e as Error).message}\n`);
  process.exit(1);
});
