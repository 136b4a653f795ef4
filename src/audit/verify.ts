import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { checkRecordLine, EMPTY_CHAIN, type ChainHead } from './chain.js';
import type { AuditVerification } from './types.js';

/**
 * Checks the hash chain of the trail at `path`, reading it line by line, and returns the first
 * line that breaks it: an edited record, a deleted, inserted or moved one, or a damaged line.
 *
 * NOTE: records removed from the end of the file leave a valid, shorter chain, and a writer who
 * rewrites every record after an edit produces a valid chain too. Detecting either needs the
 * last hash or the record count kept somewhere the writer cannot reach.
 */
export async function verifyAuditFile(path: string): Promise<AuditVerification> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let head: ChainHead = EMPTY_CHAIN;
  let lineNumber = 0;

  try {
    for await (const line of lines) {
      lineNumber += 1;
      const result = checkRecordLine(line, head);
      if ('reason' in result) {
        return { ok: false, records: lineNumber - 1, line: lineNumber, reason: result.reason };
      }
      head = result;
    }
    return { ok: true, records: lineNumber };
  } finally {
    lines.close();
    input.destroy();
  }
}
