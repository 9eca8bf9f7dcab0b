import { readFileSync } from 'node:fs';
import path from 'node:path';
import { schema } from '../../src/config/schema';

// docs/settings.md is where an operator looks a setting up: it must list every setting the
// gateway reads, no setting it does not, with the default the schema really has.
const DOC = path.join(__dirname, '..', '..', 'docs', 'settings.md');

interface Row {
  names: string[];
  defaultCell: string;
  meaning: string;
}

/** Rows of every `| env var | default | meaning |` table; a row may name several (`A` / `B`). */
function settingRows(markdown: string): Row[] {
  const rows: Row[] = [];
  let inTable = false;
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    const cells = line.slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined).split(' | ').map((c) => c.trim());
    if (/^env var$/i.test(cells[0])) {
      inTable = true;
      continue;
    }
    if (!inTable || /^-+$/.test(cells[0])) continue;
    rows.push({ names: [...cells[0].matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]), defaultCell: cells[1] ?? '', meaning: cells.slice(2).join(' | ') });
  }
  return rows;
}

const rows = settingRows(readFileSync(DOC, 'utf8'));
const documented = rows.flatMap((r) => r.names);
const settings = Object.values(schema);

test('docs/settings.md and the convict schema list exactly the same settings (plus CONFIG_FILE)', () => {
  const inSchema = settings.map((s) => s.env).sort();
  expect(documented.filter((n) => n !== 'CONFIG_FILE').sort()).toEqual(inSchema);
  expect(documented).toContain('CONFIG_FILE');
});

test('each setting has one row, with a default and a meaning', () => {
  const twice = documented.filter((n, i) => documented.indexOf(n) !== i);
  expect(twice).toEqual([]);
  for (const row of rows) {
    expect({ row: row.names, ok: row.names.length > 0 && row.defaultCell.length > 0 && row.meaning.length > 0 }).toEqual({ row: row.names, ok: true });
  }
});

test('the default documented is the schema default', () => {
  const wrong: string[] = [];
  for (const row of rows) {
    // `A` / `B` | `1` / `2`: the n-th default belongs to the n-th name.
    const defaults = row.defaultCell.split(' / ');
    row.names.forEach((name, i) => {
      const setting = settings.find((s) => s.env === name);
      if (!setting || setting.default === null) return;
      const cell = row.names.length > 1 && defaults.length === row.names.length ? defaults[i] : row.defaultCell;
      if (!cell.includes(`\`${String(setting.default)}\``)) wrong.push(`${name}: schema default ${String(setting.default)}, documented ${cell}`);
    });
  }
  expect(wrong).toEqual([]);
});

test('the check reads the table (a row removed or a default changed is caught)', () => {
  const sample = ['| env var | default | meaning |', '| --- | --- | --- |', '| `PORT` / `HOST` | `8080` / `0.0.0.0` | listener |', '| `LOG_LEVEL` | `info` | level |', '', '| `NOT_A_ROW` | x | y |'].join('\n');
  expect(settingRows(sample)).toEqual([
    { names: ['PORT', 'HOST'], defaultCell: '`8080` / `0.0.0.0`', meaning: 'listener' },
    { names: ['LOG_LEVEL'], defaultCell: '`info`', meaning: 'level' },
  ]);
});
