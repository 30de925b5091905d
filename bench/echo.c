/*
 * The benchmark's ceiling for a batched receive loop: a C echo that reads up to 64 datagrams per call
 * (recvmmsg) and returns each, unchanged, to port RETURN_PORT of the address it came from, all in one
 * call (sendmmsg). No inspection, no copies beyond the kernel's. Built and run by bench/run.ts:
 *
 *   cc -O2 -o echo bench/echo.c && ./echo 127.0.30.4 6081 6081
 *
 * It prints "ready" once bound and runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 9216
#define BUFFER_BYTES (32 << 20)

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ADDRESS PORT RETURN_PORT\n", argv[0]);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  int size = BUFFER_BYTES;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &local.sin_addr) != 1 || bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
    perror("bind");
    return 1;
  }
  uint16_t return_port = htons((uint16_t)atoi(argv[3]));
  static uint8_t data[BATCH][SLOT];
  static struct sockaddr_in peer[BATCH];
  static struct iovec iov[BATCH];
  static struct mmsghdr rx[BATCH], tx[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = data[i];
    iov[i].iov_len = SLOT;
    rx[i].msg_hdr.msg_iov = &iov[i];
    rx[i].msg_hdr.msg_iovlen = 1;
    rx[i].msg_hdr.msg_name = &peer[i];
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    for (int i = 0; i < BATCH; i++) rx[i].msg_hdr.msg_namelen = sizeof peer[i];
    int n = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("recvmmsg");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      static struct iovec out[BATCH];
      out[i].iov_base = data[i];
      out[i].iov_len = rx[i].msg_len;
      peer[i].sin_port = return_port;
      memset(&tx[i].msg_hdr, 0, sizeof tx[i].msg_hdr);
      tx[i].msg_hdr.msg_iov = &out[i];
      tx[i].msg_hdr.msg_iovlen = 1;
      tx[i].msg_hdr.msg_name = &peer[i];
      tx[i].msg_hdr.msg_namelen = sizeof peer[i];
    }
    for (int sent = 0; sent < n;) {
      int r = sendmmsg(fd, tx + sent, n - sent, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        sent++; /* this one cannot go: skip it, as a datagram socket would lose it */
      } else {
        sent += r;
      }
    }
  }
}
