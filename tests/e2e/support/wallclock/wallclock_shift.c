/*
 * Test-only LD_PRELOAD shim: shifts the wall clock (CLOCK_REALTIME, gettimeofday, time) of the
 * process it is loaded into by the number of seconds written in the file $WALLCLOCK_SHIFT_FILE
 * (re-read at most every 10 ms), and leaves CLOCK_MONOTONIC alone. The end-to-end tests use it to
 * step Envoy's wall clock mid-request. No malloc, so it is safe under any allocator (libfaketime
 * deadlocks against Envoy's tcmalloc).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long shift_seconds(void) {
  static long long cached = 0;
  static long long checked_ns = 0;
  struct timespec mono;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &mono);
  long long now = (long long)mono.tv_sec * 1000000000LL + mono.tv_nsec;
  if (checked_ns != 0 && now - checked_ns < 10000000LL) return cached;
  checked_ns = now;
  const char *path = getenv("WALLCLOCK_SHIFT_FILE");
  if (path == NULL) return 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return cached;
  char buf[32];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return cached;
  buf[n] = 0;
  cached = strtoll(buf, NULL, 10);
  return cached;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
  long r = syscall(SYS_clock_gettime, id, ts);
  if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift_seconds();
  return (int)r;
}

int gettimeofday(struct timeval *tv, void *tz) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  if (tv != NULL) {
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
  }
  (void)tz;
  return 0;
}

time_t time(time_t *out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out != NULL) *out = ts.tv_sec;
  return ts.tv_sec;
}
