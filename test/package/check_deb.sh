#!/usr/bin/env bash
# Build the Debian package of a build folder with cpack, then check it with
# dpkg-deb: control fields, dependencies, the exact file list, owners and
# modes, the conffile, the maintainer scripts, and the installed files
# themselves (unit, configuration, man page, binary).
#   check_deb.sh BUILD_DIR SOURCE_DIR VERSION UNIT_DIR
set -euo pipefail
build=$1 src=$2 version=$3 unit_dir=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
errors=0
fail() { echo "FAIL: $*" >&2; errors=$((errors + 1)); }

(cd "$build" && cpack -G DEB -B "$work/out" > "$work/cpack.log" 2>&1) || {
  cat "$work/cpack.log" >&2
  exit 1
}
arch=$(dpkg --print-architecture)
deb="$work/out/zeolite_${version}-1_${arch}.deb"
[ -f "$deb" ] || { ls -l "$work/out" >&2; echo "FAIL: no $deb" >&2; exit 1; }

# ---- control fields
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = zeolite ] || fail "Package: $(field Package)"
[ "$(field Version)" = "${version}-1" ] || fail "Version: $(field Version)"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
[ "$(field Section)" = database ] || fail "Section: $(field Section)"
[ "$(field Priority)" = optional ] || fail "Priority: $(field Priority)"
[[ "$(field Maintainer)" =~ ^[^\<]+\ \<[^\>]+@[^\>]+\>$ ]] || fail "Maintainer: $(field Maintainer)"
[ -n "$(field Installed-Size)" ] || fail "no Installed-Size"
[ "$(field Description | wc -l)" -ge 3 ] || fail "Description: $(field Description)"
field Description | awk 'length > 80 { bad = 1 } END { exit bad }' || fail "Description lines over 80 columns"

# Depends: adduser (the postinst's), and for every library the binary links,
# the package that holds it (versioned where the library has a symbols or
# shlibs file; libasan8's has none).
depends=$(field Depends)
has_dep() { [[ ", $depends," == *", $1"[\ ,]* ]]; }
has_dep adduser || fail "Depends lacks adduser: $depends"
[[ ", $depends," == *", libc6 (>= "* ]] || fail "no versioned libc6: did dpkg-shlibdeps run? $depends"
bin="$build/src/tools/zeolite"
libs=$(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }')
[ -n "$libs" ] || fail "objdump found no NEEDED libraries in $bin"
for lib in $libs; do
  path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
  pkg=$(dpkg -S "$(readlink -f "$path")" 2> /dev/null | head -1 | cut -d: -f1) ||
    pkg=$(dpkg -S "$path" | head -1 | cut -d: -f1)
  [ -n "$pkg" ] || { fail "no package holds $lib ($path)"; continue; }
  has_dep "$pkg" || fail "Depends lacks $pkg (for $lib): $depends"
done

# ---- files: exactly these, root's, with these modes
dpkg-deb -c "$deb" > "$work/list"
awk '{ print $1, $2, $6 }' "$work/list" | grep -v '^d' | sort > "$work/files"
sort > "$work/want" << LIST
-rw-r--r-- root/root ./etc/zeolite/zeo.conf
-rw-r--r-- root/root .${unit_dir}/zeolite.service
-rwxr-xr-x root/root ./usr/bin/zeolite
-rw-r--r-- root/root ./usr/share/doc/zeolite/changelog.Debian.gz
-rw-r--r-- root/root ./usr/share/doc/zeolite/examples/zeo.conf
-rw-r--r-- root/root ./usr/share/man/man1/zeolite.1.gz
LIST
diff -u "$work/want" "$work/files" > "$work/diff" || fail "file list: $(cat "$work/diff")"
grep -q '^drwxr-xr-x root/root .* \./var/lib/zeolite/$' "$work/list" ||
  fail "the package does not own /var/lib/zeolite: $(cat "$work/list")"

# ---- control files: the conffile and the maintainer scripts
dpkg-deb -e "$deb" "$work/control"
[ "$(cat "$work/control/conffiles")" = /etc/zeolite/zeo.conf ] ||
  fail "conffiles: $(cat "$work/control/conffiles")"
for s in postinst prerm postrm; do
  f="$work/control/$s"
  [ -x "$f" ] || { fail "no executable $s"; continue; }
  sh -n "$f" || fail "$s: sh -n fails"
  [ "$(head -1 "$f")" = "#!/bin/sh" ] || fail "$s: not a /bin/sh script"
  grep -q '^set -e$' "$f" || fail "$s: no set -e"
done
grep -q 'adduser --system --group --home /var/lib/zeolite' "$work/control/postinst" ||
  fail "postinst does not create the zeolite system user"
grep -q 'chown zeolite:zeolite /var/lib/zeolite' "$work/control/postinst" ||
  fail "postinst does not give /var/lib/zeolite to zeolite"
grep -q "deb-systemd-helper enable 'zeolite.service'" "$work/control/postinst" ||
  fail "postinst does not enable the unit"
grep -q "deb-systemd-invoke start 'zeolite.service'" "$work/control/postinst" ||
  fail "postinst does not start the service"
grep -q "deb-systemd-invoke stop 'zeolite.service'" "$work/control/prerm" ||
  fail "prerm does not stop the service"
grep -q "deb-systemd-helper purge 'zeolite.service'" "$work/control/postrm" ||
  fail "postrm does not forget the unit on purge"

# ---- the installed files
dpkg-deb -x "$deb" "$work/root"
r="$work/root"
grep -qx 'ExecStart=/usr/bin/zeolite serve -C /etc/zeolite/zeo.conf' "$r$unit_dir/zeolite.service" ||
  fail "the unit's ExecStart: $(grep ExecStart "$r$unit_dir/zeolite.service")"
cmp -s "$r/etc/zeolite/zeo.conf" "$src/etc/zeo.conf" || fail "/etc/zeolite/zeo.conf is not etc/zeo.conf"
cmp -s "$r/usr/share/doc/zeolite/examples/zeo.conf" "$src/etc/zeo.conf" ||
  fail "the example is not etc/zeo.conf"
gzip -dc "$r/usr/share/man/man1/zeolite.1.gz" | cmp -s - "$build/doc/man/man1/zeolite.1" ||
  fail "the man page is not the build's"
gzip -dc "$r/usr/share/doc/zeolite/changelog.Debian.gz" | head -1 |
  grep -qx "zeolite (${version}-1) unstable; urgency=medium" || fail "changelog.Debian.gz's first line"
readelf -S "$r/usr/bin/zeolite" | grep -q '\.symtab' && fail "/usr/bin/zeolite is not stripped"
"$r/usr/bin/zeolite" --version | grep -qx "zeolite $version .*" ||
  fail "the packaged zeolite --version: $("$r/usr/bin/zeolite" --version 2>&1)"

if [ "$errors" -gt 0 ]; then
  echo "$errors check(s) failed for $deb" >&2
  exit 1
fi
echo "ok: $(basename "$deb"): $(wc -l < "$work/files") files, Depends: $depends"
