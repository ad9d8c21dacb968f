/* clock: the two clocks loket reads. Wall time (milliseconds since the Unix
 * epoch, UTC) for what is stored and shown; monotonic time for durations,
 * timeouts and rates, which must not jump when the system clock is set. */
#ifndef LOKET_CLOCK_H
#define LOKET_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void); /* CLOCK_REALTIME, ms since the epoch */
int64_t clock_mono_ms(void); /* CLOCK_MONOTONIC, ms */
int64_t clock_mono_us(void); /* CLOCK_MONOTONIC, µs */

#endif
