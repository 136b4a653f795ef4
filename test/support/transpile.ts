import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPOSITORY_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Transpiles `entry` and every module it imports by relative path into `outDir`, keeping the
 * repository layout, so that a plain `node` child process can import it. Node 20 cannot run
 * TypeScript itself, and the project's imports already name the `.js` files.
 */
export async function transpileModuleTree(entry: string, outDir: string): Promise<string> {
  const pending = [resolve(REPOSITORY_ROOT, entry)];
  const done = new Set<string>();
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (done.has(file)) continue;
    done.add(file);

    const source = await readFile(file, 'utf8');
    const output = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    });
    const target = join(outDir, relative(REPOSITORY_ROOT, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, output.outputText);

    for (const match of source.matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)) {
      pending.push(resolve(dirname(file), `${match[1]}.ts`));
    }
  }
  return join(outDir, entry.replace(/\.ts$/, '.js'));
}
