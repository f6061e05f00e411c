/* busy: N threads spinning, for sampling benchmarks. usage: busy N SECONDS */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static volatile unsigned long sink;

static void *spin(void *arg) {
	unsigned long x = (unsigned long)arg | 1;
	for (;;) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sink = x;
	}
	return NULL;
}

int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 1;
	int secs = argc > 2 ? atoi(argv[2]) : 60;
	for (int i = 1; i < n; i++) {
		pthread_t t;
		pthread_create(&t, NULL, spin, (void *)(long)i);
	}
	if (n > 0) {
		pthread_t t;
		pthread_create(&t, NULL, spin, NULL);
	}
	sleep(secs);
	return 0;
}
