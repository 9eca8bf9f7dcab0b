import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

// The README is the map and docs/ the reference: a link from one to the other that leads
// nowhere (a moved section, a renamed heading) is how an operator loses the page they need.
const ROOT = path.join(__dirname, '..', '..');
const DOCS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** Relative links `[text](target)` outside code blocks and code spans. */
function linksOf(markdown: string): string[] {
  const links: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!/^[a-z]+:/i.test(m[1])) links.push(m[1]);
    }
  }
  return links;
}

test.each(DOCS)('every relative link in %s leads to a file and heading that exist', (doc) => {
  const broken: string[] = [];
  for (const link of linksOf(readFileSync(path.join(ROOT, doc), 'utf8'))) {
    const [target, anchor] = link.split('#');
    const file = target === '' ? path.join(ROOT, doc) : path.resolve(path.dirname(path.join(ROOT, doc)), target);
    if (!existsSync(file)) {
      broken.push(`${link}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!statSync(file).isFile() || !file.endsWith('.md')) {
      broken.push(`${link}: an anchor into something that is not a markdown file`);
      continue;
    }
    if (!anchorsOf(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${link}: no heading with that anchor`);
  }
  expect(broken).toEqual([]);
});

test('anchors are computed as GitHub does', () => {
  const anchors = anchorsOf(['# Every core: WORKERS', '## Why plain requests go through undici, not http-proxy', '## TLS and HTTP/2 on the proxy port', '## Notes', '## Notes', '```', '# not a heading', '```'].join('\n'));
  expect([...anchors]).toEqual(['every-core-workers', 'why-plain-requests-go-through-undici-not-http-proxy', 'tls-and-http2-on-the-proxy-port', 'notes', 'notes-1']);
});
