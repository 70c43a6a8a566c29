#!/bin/sh
# Run a first container: build a busybox image from Debian's busybox-static
# (no registry needed), then `portique run` it.
set -eu
if ! portique image inspect busybox:latest >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/tmp"
    cp /bin/busybox "$tmp/rootfs/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$tmp/rootfs/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$tmp/rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/rootfs/etc/group"
    chmod 1777 "$tmp/rootfs/tmp"
    tar -C "$tmp/rootfs" -cf "$tmp/busybox.tar" .
    portique import --change 'CMD ["/bin/sh"]' "$tmp/busybox.tar" busybox:latest >/dev/null
fi
exec portique run --rm busybox echo "hello from a portique container"
