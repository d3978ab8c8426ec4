// Typed instructions: flags, heredocs, stage splitting and the one-line errors a user sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumpAST, parseDockerfile } from '../../frontends/dockerfile/parser.js';
import { parseStages, type Command } from '../../frontends/dockerfile/instructions.js';
import { expandInstruction } from '../../frontends/dockerfile/expand.js';
import { processWord, processWords } from '../../frontends/dockerfile/shell-lexer.js';
import { DockerfileParseError } from '../../frontends/dockerfile/errors.js';

const stagesOf = (text: string) => parseStages(parseDockerfile(text));
const cmds = (text: string): Command[] => stagesOf(text).stages.flatMap((s) => s.commands);
function fails(text: string, message: string | RegExp): void {
  assert.throws(() => stagesOf(text), (e: unknown) => {
    assert.ok(e instanceof DockerfileParseError, String(e));
    assert.equal(e.userFacing, true);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
}

test('FROM: platform, stage name lowercased, global ARGs before the first FROM', () => {
  const { metaArgs, stages } = stagesOf('ARG BASE=busybox\nARG V\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\nRUN true\nFROM scratch\nCOPY --from=build /a /b\n');
  assert.deepEqual(metaArgs.map((a) => a.args), [[{ key: 'BASE', value: 'busybox', docComment: '' }], [{ key: 'V', docComment: '' }]]);
  assert.equal(stages.length, 2);
  assert.equal(stages[0]!.baseName, '${BASE}');
  assert.equal(stages[0]!.platform, '$BUILDPLATFORM');
  assert.equal(stages[0]!.stageName, 'build');
  assert.equal(stages[0]!.line, 3);
  assert.equal(stages[1]!.commands[0]!.name, 'copy');
});

test('FROM errors name the line', () => {
  fails('FROM a AS 1x\n', 'Dockerfile:1: invalid name for build stage: "1x", name can\'t start with a number or contain symbols');
  fails('FROM a b\n', 'Dockerfile:1: FROM requires either one or three arguments');
  fails('FROM scratch\nFROM --platfrm=x a\n', 'Dockerfile:2: unknown flag: --platfrm (did you mean platform?)');
  fails('RUN true\n', 'Dockerfile:1: no build stage in current context');
});

test('unknown instruction and unknown flag errors', () => {
  fails('FROM scratch\n\n\nFOO bar\n', 'Dockerfile:4: unknown instruction: FOO (did you mean FROM?)');
  fails('FROM scratch\nXYZZY a\n', 'Dockerfile:2: unknown instruction: XYZZY');
  fails('FROM scratch\nCOPY --frm=a x y\n', 'Dockerfile:2: unknown flag: --frm (did you mean from?)');
  fails('FROM scratch\nCOPY --link=maybe x y\n', 'Dockerfile:2: expecting boolean value for flag --link, not: maybe');
  fails('FROM scratch\nCOPY --from x y\n', 'Dockerfile:2: missing a value on flag: --from');
  fails('FROM scratch\nCOPY --from=a --from=b x y\n', 'Dockerfile:2: duplicate flag specified: --from');
  fails('FROM scratch\nCOPY x\n', /^Dockerfile:2: COPY requires at least two arguments/);
  fails('FROM scratch\nENV --x=1 A=b\n', 'Dockerfile:2: unknown flag: --x');
});

test('COPY and ADD flags', () => {
  const [copy, add] = cmds('FROM scratch\nCOPY --from=build --chown=1:2 --chmod=0755 --link --parents --exclude=*.md --exclude=x a b /dst/\n' +
    'ADD --checksum=sha256:abc --keep-git-dir --unpack=false --exclude=y https://example.com/x.tar /x\n');
  assert.ok(copy?.name === 'copy' && add?.name === 'add');
  assert.deepEqual([copy.from, copy.chown, copy.chmod, copy.link, copy.parents, copy.exclude, copy.sources, copy.dest],
    ['build', '1:2', '0755', true, true, ['*.md', 'x'], ['a', 'b'], '/dst/']);
  assert.deepEqual([add.checksum, add.keepGitDir, add.unpack, add.link, add.exclude], ['sha256:abc', true, false, false, ['y']]);
  const [plain] = cmds('FROM scratch\nADD a /b\n');
  assert.ok(plain?.name === 'add');
  assert.equal(plain.keepGitDir, undefined);
  assert.equal(plain.unpack, undefined);
});

test('RUN: shell and exec form, --mount sub-options, --network, --security', () => {
  const [shell, exec, mounted] = cmds('FROM scratch\nRUN echo "hi there"\nRUN ["sh", "-c", "echo  x"]\n' +
    'RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000,gid=1000 ' +
    '--mount=type=secret,id=tok,env=TOKEN,required --mount=type=bind,from=build,src=/out,dst=/in,rw ' +
    '--mount=type=tmpfs,target=/t,size=64m --mount=type=ssh --network=none --security=insecure make\n');
  assert.ok(shell?.name === 'run' && exec?.name === 'run' && mounted?.name === 'run');
  assert.deepEqual([shell.cmdLine, shell.prependShell], [['echo "hi there"'], true]);
  assert.deepEqual([exec.cmdLine, exec.prependShell], [['sh', '-c', 'echo  x'], false]);
  assert.equal(mounted.network, 'none');
  assert.equal(mounted.security, 'insecure');
  const [cache, secret, bind, tmpfs, ssh] = mounted.mounts;
  assert.deepEqual([cache!.type, cache!.target, cache!.id, cache!.sharing, cache!.mode, cache!.uid, cache!.gid, cache!.readOnly],
    ['cache', '/root/.cache', 'pip', 'locked', 0o700, 1000, 1000, false]);
  assert.deepEqual([secret!.type, secret!.id, secret!.env, secret!.required, secret!.readOnly], ['secret', 'tok', 'TOKEN', true, true]);
  assert.deepEqual([bind!.type, bind!.from, bind!.source, bind!.target, bind!.readOnly], ['bind', 'build', '/out', '/in', false]);
  assert.deepEqual([tmpfs!.type, tmpfs!.sizeLimit], ['tmpfs', 64 * 1024 * 1024]);
  assert.deepEqual([ssh!.type, ssh!.readOnly], ['ssh', true]);
});

test('RUN flag errors', () => {
  fails('FROM scratch\nRUN --network=bridge true\n', 'Dockerfile:2: invalid network mode "bridge"');
  fails('FROM scratch\nRUN --security=x true\n', 'Dockerfile:2: security "x" is not valid');
  fails('FROM scratch\nRUN --mount=type=cahce,target=/x true\n', 'Dockerfile:2: unsupported mount type "cahce" (did you mean cache?)');
  fails('FROM scratch\nRUN --mount=type=bind,target=/x,mode=0600 true\n', 'Dockerfile:2: mode not allowed for "bind" type mounts');
  fails('FROM scratch\nRUN --mount=type=cache,target=/x,sharing=shard true\n', 'Dockerfile:2: unsupported sharing value "shard" (did you mean shared?)');
  fails('FROM scratch\nRUN --mount=type=bind,sharing=locked true\n', 'Dockerfile:2: invalid cache sharing set for bind mount');
  fails('FROM scratch\nRUN --mount=type=secret true\n', 'Dockerfile:2: invalid secret mount. one of source, target required');
  fails('FROM scratch\nRUN --mount=type=cache,targt=/x true\n', "Dockerfile:2: unexpected key 'targt' in 'targt=/x' (did you mean target?)");
  fails('FROM scratch\nRUN --mount=type=bind,from=$X,target=/x true\n', "Dockerfile:2: 'from' doesn't support variable expansion, define alias stage instead");
});

test('RUN --mount with variables is parsed when expanded', () => {
  const [run] = cmds('FROM scratch\nRUN --mount=type=cache,target=$DIR,id=${ID:-x} true\n');
  assert.ok(run?.name === 'run');
  const env = { DIR: '/cache' };
  const expanded = expandInstruction(run, { word: (s) => processWord(s, env), words: (s) => processWords(s, env) });
  assert.deepEqual([expanded.mounts[0]!.type, expanded.mounts[0]!.target, expanded.mounts[0]!.id], ['cache', '/cache', 'x']);
});

test('ENV, LABEL, ARG, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, SHELL, MAINTAINER', () => {
  const c = cmds('FROM scratch\nENV A=1 B="two words"\nENV OLD value with spaces\nLABEL a.b=c\nARG X Y=2 Z="a b"\nEXPOSE 8080/tcp 80\n' +
    'VOLUME ["/a", "/b"]\nVOLUME /c /d\nUSER app:app\nWORKDIR /srv\nSTOPSIGNAL SIGTERM\nSHELL ["/bin/bash", "-c"]\nMAINTAINER me\n');
  const by = <N extends Command['name']>(n: N, i = 0) => c.filter((x) => x.name === n)[i] as Extract<Command, { name: N }>;
  assert.deepEqual(by('env').env, [{ key: 'A', value: '1', noDelim: false }, { key: 'B', value: '"two words"', noDelim: false }]);
  assert.deepEqual(by('env', 1).env, [{ key: 'OLD', value: 'value with spaces', noDelim: true }]);
  assert.deepEqual(by('label').labels, [{ key: 'a.b', value: 'c', noDelim: false }]);
  assert.deepEqual(by('arg').args.map((a) => [a.key, a.value]), [['X', undefined], ['Y', '2'], ['Z', '"a b"']]);
  assert.deepEqual(by('expose').ports, ['80', '8080/tcp']);
  assert.deepEqual(by('volume').volumes, ['/a', '/b']);
  assert.deepEqual(by('volume', 1).volumes, ['/c', '/d']);
  assert.equal(by('user').user, 'app:app');
  assert.equal(by('workdir').path, '/srv');
  assert.equal(by('stopsignal').signal, 'SIGTERM');
  assert.deepEqual(by('shell').shell, ['/bin/bash', '-c']);
  assert.equal(by('maintainer').maintainer, 'me');
  fails('FROM scratch\nSHELL /bin/sh -c\n', 'Dockerfile:2: SHELL requires the arguments to be in JSON form');
  fails('FROM scratch\nUSER\n', 'Dockerfile:2: USER requires exactly one argument');
  assert.equal((cmds('FROM scratch\nWORKDIR /a b\n')[0] as { path: string }).path, '/a b'); // one string, as BuildKit
  fails('FROM scratch\nENV A=1 B\n', `Dockerfile:2: Syntax error - can't find = in "B". Must be of the form: name=value`);
  fails('FROM scratch\nVOLUME [""]\n', 'Dockerfile:2: VOLUME specified can not be an empty string');
});

test('expansion helper expands exactly the words BuildKit expands', () => {
  const env = { V: '1.0', DIR: '/opt', U: 'app', P: '8080' };
  const e = { word: (s: string) => processWord(s, env), words: (s: string) => processWords(s, env) };
  const c = cmds('FROM scratch\nCOPY --chown=$U --from=x app-$V.tar $DIR/\nWORKDIR $DIR/w\nEXPOSE $P\nCMD echo $V\nENV K=$V\n');
  const [copy, workdir, expose, cmd, envi] = c.map((x) => expandInstruction(x, e));
  assert.ok(copy?.name === 'copy' && workdir?.name === 'workdir' && expose?.name === 'expose' && cmd?.name === 'cmd' && envi?.name === 'env');
  assert.deepEqual([copy.chown, copy.sources, copy.dest], ['app', ['app-1.0.tar'], '/opt/']);
  assert.equal(workdir.path, '/opt/w');
  assert.deepEqual(expose.ports, ['8080']);
  assert.deepEqual(cmd.cmdLine, ['echo $V']); // CMD is never expanded at build time
  assert.equal(envi.env[0]!.value, '1.0');
});

test('HEALTHCHECK: NONE, CMD shell/exec, flag validation', () => {
  const [none, shell, exec] = cmds('FROM scratch\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --timeout=1m30s --retries=3 CMD curl -f http://x/\n' +
    'HEALTHCHECK --start-period=0s --start-interval=2s CMD ["true"]\n');
  assert.ok(none?.name === 'healthcheck' && shell?.name === 'healthcheck' && exec?.name === 'healthcheck');
  assert.deepEqual(none.health.test, ['NONE']);
  assert.deepEqual(shell.health.test, ['CMD-SHELL', 'curl -f http://x/']);
  assert.deepEqual([shell.health.interval, shell.health.timeout, shell.health.retries], [5e9, 90e9, 3]);
  assert.deepEqual([exec.health.test, exec.health.startPeriod, exec.health.startInterval], [['CMD', 'true'], 0, 2e9]);
  fails('FROM scratch\nHEALTHCHECK --interval=1us CMD x\n', 'Dockerfile:2: Interval "interval" cannot be less than 1ms');
  fails('FROM scratch\nHEALTHCHECK --retries=-1 CMD x\n', 'Dockerfile:2: --retries cannot be negative (-1)');
  fails('FROM scratch\nHEALTHCHECK CONNECT TCP 7000\n', 'Dockerfile:2: Unknown type "CONNECT" in HEALTHCHECK (try CMD)');
  fails('FROM scratch\nHEALTHCHECK NONE x\n', 'Dockerfile:2: HEALTHCHECK NONE takes no arguments');
  fails('FROM scratch\nHEALTHCHECK CMD\n', 'Dockerfile:2: Missing command after HEALTHCHECK CMD');
  fails('FROM scratch\nHEALTHCHECK --interval=5 CMD x\n', /^Dockerfile:2: time: missing unit in duration "5"$/);
});

test('ONBUILD nests and rejects ONBUILD/FROM/MAINTAINER triggers', () => {
  const ast = parseDockerfile('FROM scratch\nONBUILD COPY --from=a x /y\nonbuild run echo hi\n');
  assert.equal(dumpAST(ast), '(from "scratch")\n(onbuild (copy ["--from=a"] "x" "/y"))\n(onbuild (run "echo hi"))');
  const c = parseStages(ast).stages[0]!.commands;
  assert.deepEqual(c.map((x) => x.name === 'onbuild' && x.expression), ['COPY --from=a x /y', 'run echo hi']);
  fails('FROM scratch\nONBUILD ONBUILD RUN x\n', "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  fails('FROM scratch\nONBUILD FROM x\n', "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger");
  fails('FROM scratch\nONBUILD maintainer x\n', "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger");
});
