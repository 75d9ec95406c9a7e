// Decode and MQTT payload throughput for the real capture and uploads of 1, 10 and 50 four-channel
// inverters, with the heap allocations each operation makes (counted by the operator new below).
#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/message_json.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>

namespace {

// Relaxed atomic: the benchmark is single-threaded, but operator new may be called from anywhere.
std::atomic<std::size_t> allocation_count{0};

} // namespace

// GCC 12 sees the malloc below and the library's frees through inlining and calls them
// mismatched; this pair is the one replacement for the whole program, so they match.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
    allocation_count.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

using ecu2mqtt::RealtimeUpload;

std::string upload_with(int inverters) {
    test::UploadSpec spec;
    for (int i = 0; i < inverters; ++i)
        spec.inverters.push_back(test::inverter_with("8060000" + test::zero_padded(i, 5), 4, 80));
    spec.centiwatts = inverters * 4LL * 80 * 100;
    return test::build_upload(spec);
}

template <class Fn> double nanoseconds_per_call(Fn&& fn) {
    using Clock = std::chrono::steady_clock;
    std::size_t iterations = 1000;
    for (;;) {
        const auto start = Clock::now();
        for (std::size_t i = 0; i < iterations; ++i)
            fn();
        const auto elapsed = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
        if (elapsed > 5e8)
            return elapsed / static_cast<double>(iterations);
        iterations *= 4;
    }
}

// Heap allocations of one call, after a first call has warmed up whatever is reused.
template <class Fn> std::size_t allocations_per_call(Fn&& fn) {
    fn();
    const auto before = allocation_count.load(std::memory_order_relaxed);
    fn();
    return allocation_count.load(std::memory_order_relaxed) - before;
}

const RealtimeUpload& realtime(const ecu2mqtt::DecodeResult& result) {
    return std::get<RealtimeUpload>(*ecu2mqtt::decoded_message(result));
}

constexpr double kLifetimeKwh = 2127.9;
constexpr double kTodayKwh = 7.599999999999909; // a ledger difference, not a short decimal
const std::string kLastSeen = "2024-02-06T11:22:20+01:00";

// The state payloads the publisher sends for one upload: the ECU's and each inverter's.
std::size_t owning_payloads(const RealtimeUpload& up) {
    std::size_t bytes =
        ecu2mqtt::ecu_state_payload(up, kLifetimeKwh, kTodayKwh, kLastSeen).dump().size();
    for (const auto& inv : up.inverters)
        bytes += ecu2mqtt::inverter_state_payload(inv, up.timestamp).dump().size();
    return bytes;
}

struct Case {
    const char* name;
    std::string bytes;
};

struct Row {
    double ns = 0;
    std::size_t allocations = 0;
};

template <class Fn> Row measure(Fn&& fn) {
    return {nanoseconds_per_call(fn), allocations_per_call(fn)};
}

} // namespace

int main() {
    const std::vector<Case> cases{
        {"real capture (2 inverters)", test::captured_upload()},
        {"1 QS1", upload_with(1)},
        {"10 QS1", upload_with(10)},
        {"50 QS1", upload_with(50)},
    };
    std::size_t sink = 0;

    std::printf("### decode_message (owning structs) and nlohmann payloads\n\n");
    std::printf("| message | bytes | decode ns | allocs | decode + MQTT payloads ns | allocs | "
                "decode + `decode` JSON ns |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& c : cases) {
        const Row decode =
            measure([&] { sink += realtime(ecu2mqtt::decode_message(c.bytes)).inverters.size(); });
        const Row payloads =
            measure([&] { sink += owning_payloads(realtime(ecu2mqtt::decode_message(c.bytes))); });
        const Row json = measure([&] {
            const auto result = ecu2mqtt::decode_message(c.bytes);
            sink += ecu2mqtt::message_to_json(*ecu2mqtt::decoded_message(result), c.bytes)
                        .dump()
                        .size();
        });
        std::printf("| %s | %zu | %.0f | %zu | %.0f | %zu | %.0f |\n", c.name, c.bytes.size(),
                    decode.ns, decode.allocations, payloads.ns, payloads.allocations, json.ns);
    }
    return sink == 0 ? 1 : 0;
}
