#!/usr/bin/env python3
"""Wraps a root filesystem tarball into a one-layer OCI image archive (oci-archive, tag given).

Usage: oci-from-rootfs.py ROOTFS.tar OUT.oci.tar TAG [ENV=VALUE ...] [--cmd JSON]
Deterministic: the same rootfs tar gives the same digests (gzip with mtime 0, fixed created time).
"""
import gzip, hashlib, io, json, sys, tarfile

def blob(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest(), data

def main():
    args = sys.argv[1:]
    cmd = ['bash']
    if '--cmd' in args:
        i = args.index('--cmd'); cmd = json.loads(args[i + 1]); del args[i:i + 2]
    rootfs, out, tag, env = args[0], args[1], args[2], args[3:]
    raw = open(rootfs, 'rb').read()
    diff_id = 'sha256:' + hashlib.sha256(raw).hexdigest()
    buf = io.BytesIO()
    # level 1: the bases are hundreds of MB and only ever travel over loopback
    with gzip.GzipFile(fileobj=buf, mode='wb', mtime=0, compresslevel=1) as gz:
        gz.write(raw)
    layer_digest, layer = blob(buf.getvalue())
    created = '2025-05-20T00:00:00Z'
    config = {
        'architecture': 'amd64', 'os': 'linux', 'created': created,
        'config': {'Env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] + env, 'Cmd': cmd},
        'rootfs': {'type': 'layers', 'diff_ids': [diff_id]},
        'history': [{'created': created, 'created_by': 'debootstrap (bench/realworld/bases.sh)'}],
    }
    config_digest, config_bytes = blob(json.dumps(config, separators=(',', ':'), sort_keys=True).encode())
    manifest = {
        'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
        'config': {'mediaType': 'application/vnd.oci.image.config.v1+json', 'digest': config_digest, 'size': len(config_bytes)},
        'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': layer_digest, 'size': len(layer)}],
    }
    manifest_digest, manifest_bytes = blob(json.dumps(manifest, separators=(',', ':'), sort_keys=True).encode())
    index = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': [{
        'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': manifest_digest, 'size': len(manifest_bytes),
        'annotations': {'org.opencontainers.image.ref.name': tag}}]}
    with tarfile.open(out, 'w', format=tarfile.PAX_FORMAT) as t:
        def add(name, data):
            info = tarfile.TarInfo(name); info.size = len(data); info.mtime = 0; info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
        add('oci-layout', b'{"imageLayoutVersion":"1.0.0"}')
        add('index.json', json.dumps(index).encode())
        for d, b in ((config_digest, config_bytes), (manifest_digest, manifest_bytes), (layer_digest, layer)):
            add('blobs/sha256/' + d.split(':')[1], b)
    print(manifest_digest)

main()
