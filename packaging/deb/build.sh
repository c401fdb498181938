#!/usr/bin/env bash
# Builds the Debian package: target/debian/pledgeflow_<version>_<arch>.deb from the release
# binary. One binary (definitions, calendars, templates and the console are built in), the
# packaged configuration as a conffile, the systemd unit, and the state directory made by
# postinst for the service's own user. Plain dpkg-deb: no debhelper tree to keep.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release --locked --quiet
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
root=target/debian/root
out="target/debian/pledgeflow_${version}_${arch}.deb"
rm -rf "$root" "$out"
umask 022

install -D -m 0755 target/release/pledgeflow "$root/usr/bin/pledgeflow"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/pledgeflow"
install -D -m 0644 packaging/pledgeflow.toml "$root/etc/pledgeflow/pledgeflow.toml"
install -D -m 0644 packaging/pledgeflow.service "$root/lib/systemd/system/pledgeflow.service"
install -D -m 0644 packaging/deb/copyright "$root/usr/share/doc/pledgeflow/copyright"
install -D -m 0644 README.md "$root/usr/share/doc/pledgeflow/README.md"
install -D -m 0644 docs/deploy.md "$root/usr/share/doc/pledgeflow/deploy.md"
install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/pledgeflow"
mkdir -p "$root/usr/share/man/man1"
{
  echo ".TH PLEDGEFLOW 1 \"$(date -u +%Y-%m-%d)\" \"pledgeflow $version\" \"User Commands\""
  echo ".SH NAME"
  echo "pledgeflow \\- commitment-based licence approval and supervision server"
  echo ".SH DESCRIPTION"
  echo ".nf"
  target/release/pledgeflow --help | sed 's/\\/\\\\/g; s/^\./\\\&./'
  echo ".fi"
} | gzip -9n > "$root/usr/share/man/man1/pledgeflow.1.gz"
chmod 0644 "$root/usr/share/man/man1/pledgeflow.1.gz"
printf 'pledgeflow (%s) unstable; urgency=medium\n\n  * Release %s: see README.md.\n\n -- pledgeflow maintainers <pledgeflow-maintainers@example.gov.cn>  %s\n' \
  "$version" "$version" "$(date -u -R)" | gzip -9n > "$root/usr/share/doc/pledgeflow/changelog.gz"
chmod 0644 "$root/usr/share/doc/pledgeflow/changelog.gz"

mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: pledgeflow
Version: $version
Architecture: $arch
Maintainer: pledgeflow maintainers <pledgeflow-maintainers@example.gov.cn>
Installed-Size: $size
Depends: libc6 (>= 2.34), libgcc-s1, adduser
Suggests: postgresql, nginx
Section: net
Priority: optional
Description: commitment-based licence approval (告知承诺制) server
 Runs a government service window's commitment-based licence approvals as
 durable workflows: deadlines on working days, reminders, revocation after
 due process, supervision tasks with their limits, credit records, an audit
 trail, a GraphQL API and a web console for window staff, approvers,
 supervising divisions and supervisors.
CONTROL
printf '/etc/pledgeflow/pledgeflow.toml\n' > "$root/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst "$root/DEBIAN/postinst"
install -m 0755 packaging/deb/postrm "$root/DEBIAN/postrm"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
