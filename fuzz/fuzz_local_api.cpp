// libFuzzer target: any bytes as a reply to each of the three port-8899 requests. Each decoder
// must return a reply or an error pointing inside the bytes (or just past them), and what it
// returns must be whole: every record as its type lays it out.
#include "ecu2mqtt/protocol/local_api.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using namespace ecu2mqtt;

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_local_api: %s\n", what);
        std::abort();
    }
}

template <class Reply> void check_error(const LocalResult<Reply>& result, std::size_t size) {
    if (const auto* error = local_error(result))
        require(error->offset <= size && !error->reason.empty(), "error past the reply");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (const auto announced = local_reply_size(bytes))
        require(local_reply_complete(bytes) == (bytes.size() >= *announced) ||
                    bytes.ends_with("END\n"),
                "completeness disagrees with the announced size");

    const auto info = decode_local_ecu_info(bytes);
    check_error(info, size);
    if (const auto* reply = local_reply(info))
        require(reply->ecu_id.size() == 12 && reply->inverters_registered >= 0,
                "ECU info without an ECU id");

    const auto realtime = decode_local_realtime(bytes);
    check_error(realtime, size);
    if (const auto* reply = local_reply(realtime))
        for (const auto& inverter : reply->inverters) {
            require(inverter.uid.size() == 12, "a uid that is not 12 digits");
            require(inverter.online || !inverter.frequency_hz, "an offline inverter's frequency");
        }

    const auto signals = decode_local_signal_levels(bytes);
    check_error(signals, size);
    if (const auto* reply = local_reply(signals))
        for (const auto& level : reply->levels)
            require(level.level >= 0 && level.level <= 255, "a level outside a byte");
    return 0;
}
