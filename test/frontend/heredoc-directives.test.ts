// Heredocs, parser directives, warnings and parse errors as a user sees them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpAST, parseDockerfile } from '../../frontends/dockerfile/parser.js';
import { parseStages } from '../../frontends/dockerfile/instructions.js';
import { DockerfileParseError } from '../../frontends/dockerfile/errors.js';

function parseFails(text: string, message: string): void {
  assert.throws(() => parseDockerfile(text), (e: unknown) => e instanceof DockerfileParseError && e.userFacing && e.message === message || assert.fail(String(e)));
}

test('RUN <<EOF keeps the body verbatim and counts its lines', () => {
  const ast = parseDockerfile('FROM busybox\nRUN <<EOF\n  echo "$HOME" \\\n\tdone\n\nEOF\nRUN true\n');
  const run = ast.children[1]!;
  assert.deepEqual(run.heredocs, [{ name: 'EOF', fileDescriptor: 0, expand: true, chomp: false, content: '  echo "$HOME" \\\n\tdone\n\n' }]);
  assert.deepEqual([run.startLine, run.endLine], [2, 6]);
  assert.equal(ast.children[2]!.startLine, 7);
  assert.equal(dumpAST(ast), '(from "busybox")\n(run "<<EOF")\n(run "true")'); // heredoc bodies are not in the dump
  const cmd = parseStages(ast).stages[0]!.commands[0]!;
  assert.ok(cmd.name === 'run');
  assert.deepEqual(cmd.files, [{ name: 'EOF', data: '  echo "$HOME" \\\n\tdone\n\n', chomp: false }]);
});

test('several heredocs in one RUN, quoted delimiters do not expand, <<- chomps tabs', () => {
  const ast = parseDockerfile('FROM busybox\nRUN <<A cat >/a && 3<<-"B" cat >/b && cat <<\'C\'\none $x\nA\n\ttwo\n\tB\nthree\nC\n');
  const docs = ast.children[1]!.heredocs;
  assert.deepEqual(docs.map((d) => [d.name, d.expand, d.chomp, d.fileDescriptor, d.content]), [
    ['A', true, false, 0, 'one $x\n'],
    ['B', false, true, 3, '\ttwo\n'],
    ['C', false, false, 0, 'three\n'],
  ]);
  assert.equal(ast.children[1]!.endLine, 8);
});

test('COPY <<EOF /x gives an inline source; chomped when <<-', () => {
  const { stages } = parseStages(parseDockerfile('FROM busybox\nCOPY <<EOF <<-"EOT" /dst/\nhello $NAME\nEOF\n\tbye\n\tEOT\nCOPY a b\n'));
  const copy = stages[0]!.commands[0]!;
  assert.ok(copy.name === 'copy');
  assert.deepEqual(copy.sources, []);
  assert.equal(copy.dest, '/dst/');
  assert.deepEqual(copy.sourceContents, [
    { path: 'EOF', data: 'hello $NAME\n', expand: true },
    { path: 'EOT', data: 'bye\n', expand: false },
  ]);
  assert.throws(() => parseStages(parseDockerfile('FROM a\nCOPY x <<EOF\nEOF\n')), /Dockerfile:2-3: COPY cannot accept a heredoc as a destination/);
});

test('exec-form RUN and other instructions have no heredocs', () => {
  const ast = parseDockerfile('FROM a\nRUN ["cat", "<<EOF"]\nENV A=<<EOF\n');
  assert.deepEqual(ast.children.map((c) => c.heredocs.length), [0, 0, 0]);
});

test('unterminated heredoc is an error at the instruction line', () => {
  parseFails('FROM a\n\nRUN <<EOF\necho hi\n', 'Dockerfile:3: unterminated heredoc "EOF"');
});

test('directives: syntax, escape, check; duplicates and bad escape rejected', () => {
  const ast = parseDockerfile('# syntax=docker/dockerfile:1.7\n# check=skip=all\n#escape=`\nFROM a\nRUN echo `\n  hi\n');
  assert.equal(ast.syntax, 'docker/dockerfile:1.7');
  assert.equal(ast.check, 'skip=all');
  assert.equal(ast.escape, '`');
  assert.equal(ast.escapeToken, '`');
  assert.deepEqual(ast.directives.map((d) => [d.name, d.line]), [['syntax', 1], ['check', 2], ['escape', 3]]);
  assert.equal(dumpAST(ast), '(from "a")\n(run "echo   hi")');
  parseFails('# escape=\\\n# escape=`\nFROM a\n', 'Dockerfile:2: only one escape parser directive can be used');
  parseFails('# escape=x\nFROM a\n', "Dockerfile:1: invalid escape token 'x' does not match ` or \\");
  // after an instruction or other comment, `# escape=` is just a comment
  assert.equal(parseDockerfile('# hello\n# escape=`\nFROM a\n').escapeToken, '\\');
});

test('empty continuation lines give BuildKit\'s warning', () => {
  const ast = parseDockerfile('FROM a\nRUN echo a \\\n\n  b\n');
  assert.deepEqual(ast.warnings.map((w) => [w.short, w.line]), [['Empty continuation line found in: RUN echo a   b', 4]]);
  assert.equal(parseDockerfile('FROM a\nRUN echo a \\\n  b\n').warnings.length, 0);
});

test('comments inside continuations are dropped; prevComment collected', () => {
  const ast = parseDockerfile('FROM a\n# build it\n# quickly\nRUN make \\\n  # not part of the command\n  all\n');
  assert.equal(ast.children[1]!.original, 'RUN make   all');
  assert.deepEqual(ast.children[1]!.prevComment, ['build it', 'quickly']);
});

test('CRLF line endings and a BOM', () => {
  const ast = parseDockerfile('\uFEFFFROM a\r\nRUN echo \\\r\n  hi\r\n');
  assert.equal(dumpAST(ast), '(from "a")\n(run "echo   hi")');
});

test('file with no instructions', () => {
  parseFails('# only a comment\n\n', 'Dockerfile:2: file with no instructions');
  parseFails('', 'Dockerfile: file with no instructions');
});
