#!/bin/sh
# pgplay-wal: the WAL archive of pgplay's basebackup engine, shipped with pgplay. nightly-backup.yml (and
# prepare.yml, lab.yml) install it as <backup.repoPath>/bin/pgplay-wal; the servers call it as
#
#   archive_command = '<repo>/bin/pgplay-wal push <repo>/wal %p %f'
#   restore_command = '<repo>/bin/pgplay-wal fetch <repo>/wal %f %p'
#
# push never replaces an archived segment: the same content again is success (PostgreSQL retries a
# segment whose archiving it did not see succeed), different content is refused (exit 1) and the
# archived file is kept: two servers archiving into one repository (a split brain) must not destroy
# each other's history. A new segment is copied to a temporary name, fsynced, then published under
# its name with link(2), which is atomic and never replaces an existing file, and the directory is
# fsynced: a crash leaves either no segment or the whole segment, never a part of one.
set -u

usage() {
  echo "usage: pgplay-wal push ARCHIVE_DIR PATH NAME | pgplay-wal fetch ARCHIVE_DIR NAME PATH" >&2
  exit 2
}

[ $# -eq 4 ] || usage
cmd=$1 dir=$2

valid_name() {
  case $1 in
    '' | .* | */*) echo "pgplay-wal: '$1' is not a WAL file name" >&2; exit 2 ;;
  esac
}

push() {
  src=$1 name=$2
  valid_name "$name"
  dest=$dir/$name
  if [ -e "$dest" ]; then
    if cmp -s -- "$src" "$dest"; then
      echo "pgplay-wal: $name is archived already with the same content" >&2
      exit 0
    fi
    echo "pgplay-wal: refusing to overwrite $dest: it is archived already with different content (is another server archiving into this repository?)" >&2
    exit 1
  fi
  tmp=$dir/.$name.pgplay-wal.$$
  trap 'rm -f -- "$tmp"' EXIT
  trap 'exit 1' HUP INT TERM
  if ! cp -- "$src" "$tmp" || ! sync -- "$tmp"; then
    echo "pgplay-wal: cannot copy $src to $tmp" >&2
    exit 1
  fi
  if ! ln -- "$tmp" "$dest" 2>/dev/null; then
    # Another process archived the segment meanwhile: the same content is success, as above.
    if [ -e "$dest" ] && cmp -s -- "$src" "$dest"; then exit 0; fi
    echo "pgplay-wal: cannot publish $dest (it appeared with different content, or the directory is not writable)" >&2
    exit 1
  fi
  rm -f -- "$tmp"
  if ! sync -- "$dir"; then
    echo "pgplay-wal: cannot fsync $dir" >&2
    exit 1
  fi
}

fetch() {
  name=$1 dst=$2
  valid_name "$name"
  # A missing segment is the normal end of the archive for recovery: exit 1 without a word.
  [ -f "$dir/$name" ] || exit 1
  cp -- "$dir/$name" "$dst"
}

case $cmd in
  push) push "$3" "$4" ;;
  fetch) fetch "$3" "$4" ;;
  *) usage ;;
esac
