// `bikeshare config`: the effective configuration, or the documented option table.
import { loadConfig } from '../config/config.js';
import { schema } from '../config/schema.js';

export function optionTable(): string {
  const lines = ['| option | env | default | meaning |', '|---|---|---|---|'];
  for (const [name, o] of Object.entries(schema)) {
    const def = name === 'workers' ? 'number of usable cores' : JSON.stringify(o.default);
    lines.push(`| ${name} | ${o.env} | ${def} | ${o.doc} |`);
  }
  return lines.join('\n');
}

export function configCommand(args: string[]): number {
  if (args.includes('--markdown')) {
    console.log(optionTable());
    return 0;
  }
  const config = loadConfig();
  const shown: Record<string, unknown> = { ...config };
  for (const [name, o] of Object.entries(schema)) if ('sensitive' in o && o.sensitive) shown[name] = String(shown[name]).replace(/\/\/[^@/]*@/, '//***@');
  console.log(JSON.stringify(shown, null, 2));
  return 0;
}
