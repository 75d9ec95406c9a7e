// Decode and MQTT payload throughput for the real capture and uploads of 1, 10 and 50 four-channel
// inverters, with the heap allocations each operation makes (counted by the operator new below):
// the owning path (decode_message(), nlohmann documents), the fast path (a reused view, text
// payloads appended to reused buffers) and the service's path (decode_inbound() through a reused
// view: the owning copy the pipeline keeps is its only allocation). Exits non-zero if the fast path
// allocates when warm. `bench_decode --repeat OPERATION CASE COUNT` only runs one operation COUNT
// times, for counting instructions under callgrind (bench/run.sh), which timing on a shared machine
// cannot match.
#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/protocol/decoded_message.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/message_json.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>

namespace {

// Relaxed atomic: the benchmark is single-threaded, but operator new may be called from anywhere.
std::atomic<std::size_t> allocation_count{0};

} // namespace

// GCC 12 inlines these into callers and then takes free() for a mismatch with operator new;
// replacing both is exactly what the standard allows.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
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
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace {

using ecu2mqtt::RealtimeUpload;

std::string upload_with(int inverters) {
    test::UploadSpec spec;
    for (int i = 0; i < inverters; ++i)
        spec.inverters.push_back(test::inverter_with("8060000" + test::zero_padded(i, 5), 4, 80));
    spec.centiwatts = inverters * 4LL * 80 * 100;
    return test::build_upload(spec);
}

// The best of three runs of at least 0.2 s each: other processes only ever add time.
template <class Fn> double nanoseconds_per_call(Fn&& fn) {
    using Clock = std::chrono::steady_clock;
    double best = 0;
    for (int run = 0; run < 3; ++run) {
        for (std::size_t iterations = 1000;; iterations *= 4) {
            const auto start = Clock::now();
            for (std::size_t i = 0; i < iterations; ++i)
                fn();
            const auto elapsed =
                std::chrono::duration<double, std::nano>(Clock::now() - start).count();
            if (elapsed > 2e8) {
                const double per_call = elapsed / static_cast<double>(iterations);
                best = run == 0 ? per_call : std::min(best, per_call);
                break;
            }
        }
    }
    return best;
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

// What is measured, each returning something that depends on the work so none is optimised out.
class Operations {
  public:
    std::size_t owning_decode(const std::string& bytes) {
        return realtime(ecu2mqtt::decode_message(bytes)).inverters.size();
    }

    // The state payloads the publisher sends for one upload: the ECU's and each inverter's.
    std::size_t owning_payloads(const std::string& bytes) {
        const auto result = ecu2mqtt::decode_message(bytes);
        const auto& up = realtime(result);
        std::size_t size =
            ecu2mqtt::ecu_state_payload(up, kLifetimeKwh, kTodayKwh, kLastSeen).dump().size();
        for (const auto& inv : up.inverters)
            size += ecu2mqtt::inverter_state_payload(inv, up.timestamp).dump().size();
        return size;
    }

    // What `ecu2mqtt decode` prints.
    std::size_t owning_json(const std::string& bytes) {
        const auto result = ecu2mqtt::decode_message(bytes);
        return ecu2mqtt::message_to_json(*ecu2mqtt::decoded_message(result), bytes).dump().size();
    }

    // What Service::handle runs for each message.
    std::size_t service_decode(const std::string& bytes) {
        const auto decoded = ecu2mqtt::decode_inbound(bytes, view_);
        return realtime(decoded.result).inverters.size() + decoded.ecu_id.size();
    }

    std::size_t fast_decode(const std::string& bytes) {
        return ecu2mqtt::decode_realtime_into(bytes, view_) ? view_.inverters.size() : 0;
    }

    // The same payloads as text, each in its own reused buffer, as a batch to publish holds them.
    std::size_t fast_payloads(const std::string& bytes) {
        if (!ecu2mqtt::decode_realtime_into(bytes, view_))
            return 0;
        buffers_.resize(1 + view_.inverters.size());
        buffers_[0].clear();
        ecu2mqtt::append_ecu_state_payload(buffers_[0], view_, kLifetimeKwh, kTodayKwh, kLastSeen);
        std::size_t size = buffers_[0].size();
        for (std::size_t i = 0; i < view_.inverters.size(); ++i) {
            auto& out = buffers_[i + 1];
            out.clear();
            ecu2mqtt::append_inverter_state_payload(out, view_.inverters[i], view_.timestamp);
            size += out.size();
        }
        return size;
    }

  private:
    ecu2mqtt::RealtimeView view_;
    std::vector<std::string> buffers_;
};

using Operation = std::size_t (Operations::*)(const std::string&);
const std::map<std::string, Operation> kOperations{
    {"decode_message", &Operations::owning_decode},
    {"decode_message+payloads", &Operations::owning_payloads},
    {"decode_message+json", &Operations::owning_json},
    {"decode_inbound", &Operations::service_decode},
    {"decode_realtime_into", &Operations::fast_decode},
    {"decode_realtime_into+payloads", &Operations::fast_payloads},
};

struct Case {
    const char* key;
    const char* name;
    std::string bytes;
};

struct Row {
    double ns = 0;
    std::size_t allocations = 0;
};

int repeat(const std::vector<Case>& cases, const std::string& operation, const std::string& key,
           long count) {
    const auto op = kOperations.find(operation);
    const auto c =
        std::find_if(cases.begin(), cases.end(), [&](const Case& c) { return c.key == key; });
    if (op == kOperations.end() || c == cases.end() || count < 0) {
        std::fprintf(stderr, "bench_decode: unknown operation or case\n");
        return 2;
    }
    Operations ops;
    std::size_t sink = 0;
    for (long i = 0; i < count; ++i)
        sink += (ops.*op->second)(c->bytes);
    return count > 0 && sink == 0 ? 1 : 0;
}

} // namespace

int main(int argc, char** argv) {
    const std::vector<Case> cases{
        {"capture", "real capture (2 inverters)", test::captured_upload()},
        {"1-qs1", "1 QS1", upload_with(1)},
        {"10-qs1", "10 QS1", upload_with(10)},
        {"50-qs1", "50 QS1", upload_with(50)},
    };
    if (argc == 5 && std::string(argv[1]) == "--repeat")
        return repeat(cases, argv[2], argv[3], std::atol(argv[4]));

    Operations ops;
    std::size_t sink = 0;
    const auto measure = [&](Operation op, const std::string& bytes) {
        const auto call = [&] { sink += (ops.*op)(bytes); };
        return Row{nanoseconds_per_call(call), allocations_per_call(call)};
    };

    std::printf("### decode_message() (owning structs) and nlohmann payload documents\n\n");
    std::printf("| message | bytes | decode ns | allocs | decode + MQTT payloads ns | allocs | "
                "decode + `decode` JSON ns |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& c : cases) {
        const Row decode = measure(&Operations::owning_decode, c.bytes);
        const Row payloads = measure(&Operations::owning_payloads, c.bytes);
        const Row json = measure(&Operations::owning_json, c.bytes);
        std::printf("| %s | %zu | %.0f | %zu | %.0f | %zu | %.0f |\n", c.name, c.bytes.size(),
                    decode.ns, decode.allocations, payloads.ns, payloads.allocations, json.ns);
    }

    std::printf("\n### decode_inbound() as the service runs it: a reused view, then the owning "
                "copy\n\n");
    std::printf("| message | bytes | decode ns | allocs |\n");
    std::printf("|---|---:|---:|---:|\n");
    for (const auto& c : cases) {
        const Row decode = measure(&Operations::service_decode, c.bytes);
        std::printf("| %s | %zu | %.0f | %zu |\n", c.name, c.bytes.size(), decode.ns,
                    decode.allocations);
    }

    std::printf("\n### decode_realtime_into() a reused view, payloads appended to reused buffers"
                "\n\n");
    std::printf("| message | bytes | decode ns | allocs | decode + MQTT payloads ns | allocs | "
                "payload bytes |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    bool fast_path_allocates = false;
    for (const auto& c : cases) {
        const Row decode = measure(&Operations::fast_decode, c.bytes);
        const Row payloads = measure(&Operations::fast_payloads, c.bytes);
        std::printf("| %s | %zu | %.0f | %zu | %.0f | %zu | %zu |\n", c.name, c.bytes.size(),
                    decode.ns, decode.allocations, payloads.ns, payloads.allocations,
                    ops.fast_payloads(c.bytes));
        fast_path_allocates = fast_path_allocates || decode.allocations || payloads.allocations;
    }
    if (fast_path_allocates)
        std::printf("\nthe fast path allocated after warm-up\n");
    return sink == 0 || fast_path_allocates ? 1 : 0;
}
