/*
 * main.c - example firmware on weft's embedded tier: a blinking task, a
 * sensor task woken by an interrupt, a producer/consumer pair over a
 * channel, and a radio send whose acknowledgement times out. Every task
 * is a C poll function with its state in a static struct; no heap.
 * Built for Cortex-M3 and run under qemu-system-arm -M mps2-an385 by the
 * test suite (embedded/qemu-example), which checks what it prints.
 * SPDX-License-Identifier: MIT
 */
#include "board.h"
#include "weft.h"

static weft_sched_t sched;

/* ---------------------------------------------------------------- blink */

/* About blink: toggles the "LED" every 100 ms, six times. step counts
 * toggles; the task resumes after each sleep. */
static struct {
  weft_task_t task;
  int step, led;
} blink;

static int blink_fn(weft_task_t *t, int status) {
  (void)status;
  if (blink.step > 0) {
    blink.led = !blink.led;
    board_putu(blink.led ? "blink: led on " : "blink: led off ", blink.step);
    board_puts("\n");
  }
  if (blink.step++ == 6) return WEFT_READY;
  return weft_task_sleep(t, 100);
}

/* ----------------------------------------------------- sensor, producer */

/* About sensor: each round starts a conversion and waits (at most
 * 500 ms) for the conversion-complete interrupt, whose handler stores the
 * sample and raises the signal; then it sends the sample to the channel,
 * waiting while the channel is full. state says which wait the task
 * resumes from. */
#define SAMPLES 4
static weft_signal_t sensor_done;
static volatile uint32_t sensor_value;
static weft_chan_t samples;
static uint32_t samples_buf[2];

static struct {
  weft_task_t task;
  int round;
  enum { START, CONVERTING, SENDING } state;
  uint32_t bits, sample;
} sensor;

static void sensor_isr(void) {
  sensor_value = 100u + 7u * (uint32_t)sensor.round;
  weft_signal_raise(&sensor_done, 1);
}

static int sensor_fn(weft_task_t *t, int status) {
  int r;
  for (;;) {
    switch (sensor.state) {
    case START:
      if (sensor.round == SAMPLES) {
        weft_chan_close(&samples);
        return WEFT_READY;
      }
      board_sensor_start(20);
      sensor.state = CONVERTING;
      r = weft_signal_wait(&sensor_done, t, &sensor.bits, 500);
      if (r == WEFT_PENDING) return r;
      status = r;
      break;
    case CONVERTING:
      if (status != 0) {
        board_putu("sensor: no interrupt, error ", (uint32_t)-status);
        board_puts("\n");
        weft_chan_close(&samples);
        return WEFT_READY;
      }
      sensor.sample = sensor_value;
      board_putu("sensor: interrupt, sample ", sensor.sample);
      board_puts("\n");
      sensor.round++;
      sensor.state = SENDING;
      r = weft_chan_send(&samples, t, &sensor.sample);
      if (r == WEFT_PENDING) return r;
      break;
    case SENDING: /* the sample was taken */
      sensor.state = START;
      break;
    }
  }
}

/* ------------------------------------------------------------- consumer */

static struct {
  weft_task_t task;
  int waiting;
  uint32_t item, total, count;
} consumer;

static int consumer_done(void) {
  board_putu("consumer: closed after ", consumer.count);
  board_putu(" samples, total ", consumer.total);
  board_puts("\n");
  return WEFT_READY;
}

static void consume(void) {
  consumer.count++;
  consumer.total += consumer.item;
  board_putu("consumer: got ", consumer.item);
  board_puts("\n");
}

static int consumer_fn(weft_task_t *t, int status) {
  int r;
  if (consumer.waiting) { /* resumed from a receive */
    consumer.waiting = 0;
    if (status == WEFT_ECLOSED) return consumer_done();
    consume();
  }
  for (;;) {
    r = weft_chan_recv(&samples, t, &consumer.item);
    if (r == WEFT_PENDING) {
      consumer.waiting = 1;
      return r;
    }
    if (r == WEFT_ECLOSED) return consumer_done();
    consume();
  }
}

/* ---------------------------------------------------------------- radio */

/* About radio: "sends" a packet and waits RADIO_MS for an acknowledgement
 * that never comes: the wait times out. */
#define RADIO_MS 50
static weft_signal_t radio_ack;
static struct {
  weft_task_t task;
  int sent;
  uint32_t bits;
} radio;

static int radio_fn(weft_task_t *t, int status) {
  if (!radio.sent) {
    radio.sent = 1;
    board_puts("radio: packet sent, waiting for the ack\n");
    status = weft_signal_wait(&radio_ack, t, &radio.bits, RADIO_MS);
    if (status == WEFT_PENDING) return status;
  }
  if (status == WEFT_ETIMEDOUT)
    board_putu("radio: no ack, timed out after ms: ", RADIO_MS);
  else
    board_putu("radio: ack, bits ", radio.bits);
  board_puts("\n");
  return WEFT_READY;
}

/* ----------------------------------------------------------------- main */

static int check(int r, const char *what) {
  if (r != 0) {
    board_puts(what);
    board_puts(": failed\n");
  }
  return r != 0;
}

int main(void) {
  int bad = 0;
  weft_sched_init(&sched, NULL, NULL);
  board_sensor_isr = sensor_isr;
  bad |= check(weft_signal_init(&sched, &sensor_done), "signal");
  bad |= check(weft_signal_init(&sched, &radio_ack), "signal");
  bad |= check(weft_chan_init_buf(&sched, &samples, samples_buf, 2,
                                  sizeof samples_buf[0]), "channel");
  bad |= check(weft_task_start(&sched, &sensor.task, sensor_fn,
                               WEFT_PRIO_HIGH, NULL), "sensor");
  bad |= check(weft_task_start(&sched, &consumer.task, consumer_fn,
                               WEFT_PRIO_NORMAL, NULL), "consumer");
  bad |= check(weft_task_start(&sched, &radio.task, radio_fn,
                               WEFT_PRIO_NORMAL, NULL), "radio");
  bad |= check(weft_task_start(&sched, &blink.task, blink_fn, WEFT_PRIO_LOW,
                               NULL), "blink");
  if (bad) return 1;
  board_puts("firmware: 4 tasks started\n");
  weft_sched_loop(&sched);
  board_putu("firmware: all tasks done at ", (uint32_t)weft_sched_now(&sched));
  board_puts(" ms\n");
  board_putu("firmware: sizeof task ", sizeof(weft_task_t));
  board_putu(" timer ", sizeof(weft_timer_t));
  board_putu(" future ", sizeof(weft_future_t));
  board_putu(" signal ", sizeof(weft_signal_t));
  board_putu(" sched ", sizeof(weft_sched_t));
  board_puts("\n");
  return 0;
}
