# The udp-batch addon of `wallscope scan dns` (src/probe/scan-dns-io.ts): a UDP socket whose
# datagrams go out with sendmmsg(2) and come in with recvmmsg(2), many per system call. Linux only.
# Built from source by scripts/setup.sh with node-gyp against the installed Node's own headers.
{
  'targets': [
    {
      'target_name': 'udp_batch',
      'sources': ['src/udp_batch.c'],
      'defines': ['NAPI_VERSION=8', '_GNU_SOURCE'],
      'cflags': ['-Wall', '-Wextra', '-Wno-unused-parameter', '-O2'],
    },
  ],
}
