// Decode throughput for uploads of 1, 10 and 50 four-channel inverters, and the real capture.
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/message_json.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <chrono>
#include <cstdio>

namespace {

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

} // namespace

int main() {
    std::printf("| message | bytes | decode ns/msg | decode msg/s | decode + JSON ns/msg |\n");
    std::printf("|---|---:|---:|---:|---:|\n");
    const std::vector<std::pair<std::string, std::string>> cases{
        {"real capture (2 inverters)", test::captured_upload()},
        {"1 inverter", upload_with(1)},
        {"10 inverters", upload_with(10)},
        {"50 inverters", upload_with(50)},
    };
    for (const auto& [name, bytes] : cases) {
        std::size_t sink = 0;
        const double decode_ns = nanoseconds_per_call([&] {
            sink += std::get<ecu2mqtt::RealtimeUpload>(
                        *ecu2mqtt::decoded_message(ecu2mqtt::decode_message(bytes)))
                        .inverters.size();
        });
        const double json_ns = nanoseconds_per_call([&] {
            const auto result = ecu2mqtt::decode_message(bytes);
            sink +=
                ecu2mqtt::message_to_json(*ecu2mqtt::decoded_message(result), bytes).dump().size();
        });
        std::printf("| %s | %zu | %.0f | %.0f | %.0f |\n", name.c_str(), bytes.size(), decode_ns,
                    1e9 / decode_ns, json_ns);
        if (sink == 0)
            return 1;
    }
    return 0;
}
