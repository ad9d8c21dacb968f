# loket: plain Makefile, pkg-config for every library.
#   make / make all   build bin/loket
#   make test         install what is missing, build, run every test
#   make asan         the whole suite again under -fsanitize=address,undefined
#   make run          install what is missing, build, start the gateway on config.example
#   make bench        the benchmarks under bench/ (see bench/README.md)
#   make format       clang-format every C file in place
#   make clean

PKGS    := libwebsockets libcurl libpcre2-8 sqlite3 yaml-0.1 inih jansson libcjson openssl libsodium
CC      ?= cc
BUILD   ?= build
BIN     ?= bin
SAN     ?=
OPT     ?= -O2
CSTD    := -std=c11 -D_GNU_SOURCE
# lws_config.h turns on lws's _DEBUG unless NDEBUG is set: release builds set it,
# the sanitizer build keeps assert() alive instead.
DEFS    := -DNDEBUG
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT      := -O1 -g
DEFS     :=
endif
ifeq ($(SAN),thread)
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
OPT      := -O1 -g
DEFS     :=
endif
CFLAGS  += $(CSTD) $(DEFS) $(OPT) -g $(WARN) $(SANFLAGS) -I. -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -pthread
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread -lm
LDFLAGS += $(SANFLAGS)

LIB_SRC  := $(sort $(wildcard core/*.c bot/*.c store/*.c gateway/*.c cli/*.c))
LIB_SRC  := $(filter-out cli/main.c,$(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/*/test_*.c))
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
LOKET    := $(BIN)/loket

.PHONY: all test asan tsan run bench format clean deps deps-test unit check-intents integration browser test-suite

all: $(LOKET)

$(LOKET): $(BUILD)/cli/main.o $(BUILD)/libloket.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libloket.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libloket.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) -o $@ $< $(BUILD)/libloket.a \
		$(LDFLAGS) $(LDLIBS) $(shell pkg-config --libs cmocka)

deps:
	@scripts/deps.sh build
deps-test:
	@scripts/deps.sh test

# The suite, for whichever build BUILD/BIN/SAN name.
test-suite: $(LOKET) $(TEST_BIN)
	@scripts/run-tests.sh $(BUILD) $(LOKET)

test: deps-test
	@$(MAKE) --no-print-directory test-suite

asan: deps-test
	@$(MAKE) --no-print-directory SAN=1 BUILD=build/asan BIN=build/asan/bin test-suite

# ThreadSanitizer: the first race or lock-order inversion stops the process
# that found it, which fails its test. Run without address randomisation: some
# kernels map memory where gcc 12's TSan runtime cannot shadow it.
tsan: deps-test
	@TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" setarch $$(uname -m) -R \
		$(MAKE) --no-print-directory SAN=thread BUILD=build/tsan BIN=build/tsan/bin test-suite

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	$(LOKET) serve -c config.example

bench: all
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory -C bench

format:
	clang-format -i $(shell find bot store gateway core cli tests bench -name '*.[ch]')

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
