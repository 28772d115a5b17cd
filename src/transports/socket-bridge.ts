/**
 * The Perl byte bridge to a unix socket (PostgreSQL's), in one place for the two processes that run it:
 * a command helper that becomes a connection's bridge (exec-server.ts) and the bridge started on its own
 * where no helper can take the connection (postgres/client.ts: over SSH, or as the connection's own user).
 *
 * `bridge(path, $lacks_socket)` prints "OK" once connected (or "ERR <reason>" and exits), then copies bytes
 * both ways; at the end of its input it half-closes the socket so the server sees the end of the session,
 * and it exits when the server closes. Perl's own socket, connect and select: every module is paid at each
 * start, once per connection, on the connection's way (IO::Socket::UNIX, IO::Select and warnings cost
 * ~12 ms more than Socket alone on the benchmark machine, and Socket ~10 ms more than none). So on Linux
 * it connects with Linux's values (PF_UNIX 1, SOCK_STREAM 1, a sockaddr_un of a native short and the
 * path) and loads Socket only where that connect fails: MIPS's SOCK_STREAM is 2 (1 makes a datagram
 * socket, which a stream socket refuses), and a missing socket is reported as Socket's connect finds it.
 * `$lacks_socket` runs where perl cannot load Socket (the standalone bridge hands over to python3). The
 * "pgplay-socket-bridge" below names the process for whoever reads its command line.
 */
export const PERL_SOCKET_BRIDGE = String.raw`
# pgplay-socket-bridge
sub bridge {
  my ($path, $lacks_socket) = @_;
  my $s;
  unless ($^O eq 'linux' && socket($s, 1, 1, 0) && connect($s, pack('S', 1) . $path . "\0")) {
    my $why = $^O eq 'linux' ? "$!" : '';
    undef $s;
    unless (eval { require Socket; 1 }) {
      $lacks_socket->() if $lacks_socket;
      # Without Socket the Linux connect's reason is the one there is (a missing socket, say).
      syswrite(STDOUT, $why ? "ERR $why\n" : "ERR perl lacks Socket\n"); exit($why ? 2 : 127);
    }
    unless (socket($s, Socket::PF_UNIX(), Socket::SOCK_STREAM(), 0) && connect($s, Socket::pack_sockaddr_un($path))) { syswrite(STDOUT, "ERR $!\n"); exit(2); }
  }
  binmode $s;
  syswrite(STDOUT, "OK\n");
  my $sfd = fileno($s); my $rin = ''; vec($rin, 0, 1) = 1; vec($rin, $sfd, 1) = 1; my $buf;
  while (1) {
    # An interrupted select (EINTR, 4 on Linux) is asked again; another error ends the bridge.
    my $ready = select(my $rout = $rin, undef, undef, undef);
    if ($ready < 0) { next if $! == 4; exit(1); }
    for my $fd (0, $sfd) {
      next unless vec($rin, $fd, 1) && vec($rout, $fd, 1);
      my $n = sysread($fd == $sfd ? $s : \*STDIN, $buf, 65536);
      if (!$n) { exit(0) if $fd == $sfd; vec($rin, 0, 1) = 0; shutdown($s, 1); next; }
      my $out = $fd == $sfd ? \*STDOUT : $s;
      my $off = 0;
      while ($off < $n) { my $w = syswrite($out, $buf, $n - $off, $off); exit(1) unless defined $w; $off += $w; }
    }
  }
}
`;
