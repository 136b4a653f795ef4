import { invalidFile, redactUrlCredentials, type ParsedEntries } from './common.js';

/** A PEP 508 name, optional extras, and the rest of the requirement. */
const REQUIREMENT = /^(?<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[(?<extras>[^\]]*)\])?\s*(?<rest>.*)$/;
const SPECIFIER = /^\s*(?<operator>===|==|!=|~=|<=|>=|<|>)\s*(?<version>[^\s,;]+)\s*$/;

/** A requirement with its line breaks joined, numbered by its first physical line. */
interface LogicalLine {
  line: number;
  text: string;
}

/**
 * Reads a pip requirements file. Only exact pins (`name==version` or `name===version`) name an
 * installed version. Other requirements are returned as skipped. Option lines (`-r`, `-e`,
 * `--index-url` and the like) and per-requirement options such as `--hash` are ignored.
 */
export function parseRequirements(content: string): ParsedEntries {
  const entries: ParsedEntries = { dependencies: [], skipped: [] };

  for (const { line, text } of joinContinuationLines(content)) {
    const requirement = stripOptions(stripComment(text)).trim();
    if (requirement === '' || requirement.startsWith('-')) continue;

    if (isUrlOrPath(requirement)) {
      entries.skipped.push({ entry: redactUrlCredentials(requirement), line, reason: 'a URL or path requirement has no version' });
      continue;
    }

    const groups = REQUIREMENT.exec(requirement.split(';')[0]?.trim() ?? '')?.groups;
    if (groups?.name === undefined) throw invalidFile('requirements', 'the line is not a requirement', line);

    const version = pinnedVersion(groups.rest ?? '', requirement, line);
    if (version === undefined) {
      entries.skipped.push({ entry: redactUrlCredentials(requirement), line, reason: 'not pinned to one version with ==' });
      continue;
    }
    entries.dependencies.push({ ecosystem: 'PyPI', name: groups.name, version });
  }
  return entries;
}

/** Joins lines that end with a backslash to the next line, as pip does. */
function joinContinuationLines(content: string): LogicalLine[] {
  const logicalLines: LogicalLine[] = [];
  let current: LogicalLine | undefined;

  content.split(/\r?\n/).forEach((physical, index) => {
    const continues = physical.endsWith('\\');
    const part = continues ? physical.slice(0, -1) : physical;
    if (current === undefined) current = { line: index + 1, text: part };
    else current.text += ` ${part}`;

    if (!continues) {
      logicalLines.push(current);
      current = undefined;
    }
  });
  if (current !== undefined) logicalLines.push(current);
  return logicalLines;
}

/** Removes a comment, which pip recognises only at the start of a line or after whitespace. */
function stripComment(text: string): string {
  return text.replace(/(^|\s)#.*$/, '');
}

/** Removes per-requirement options such as `--hash=sha256:…`, which pip allows only as long options. */
function stripOptions(text: string): string {
  const optionStart = text.search(/\s--[A-Za-z]/);
  return optionStart === -1 ? text : text.slice(0, optionStart);
}

function isUrlOrPath(requirement: string): boolean {
  if (requirement.includes('://') || /^[./\\~]/.test(requirement)) return true;
  // PEP 508 direct reference: "name @ https://…" or "name[extra] @ file:///…".
  return /^[A-Za-z0-9._-]+\s*(?:\[[^\]]*\]\s*)?@/.test(requirement);
}

/**
 * Returns the version of an exact pin, or undefined when the specifiers allow more than one
 * version. A wildcard (`==1.4.*`) is not a pin.
 */
function pinnedVersion(specifierText: string, requirement: string, line: number): string | undefined {
  let specifiers = specifierText.trim();
  if (specifiers.startsWith('(') && specifiers.endsWith(')')) specifiers = specifiers.slice(1, -1).trim();
  if (specifiers === '') return undefined;

  const pins = new Set<string>();
  for (const specifier of specifiers.split(',')) {
    const groups = SPECIFIER.exec(specifier)?.groups;
    if (groups?.operator === undefined || groups.version === undefined) {
      throw invalidFile('requirements', 'the line has an invalid version specifier', line);
    }
    if (groups.operator === '===' || (groups.operator === '==' && !groups.version.includes('*'))) pins.add(groups.version);
  }
  return pins.size === 1 ? [...pins][0] : undefined;
}
