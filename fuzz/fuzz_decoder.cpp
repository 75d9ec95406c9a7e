// libFuzzer target: any bytes into the decoding paths, decode_message(), the reused view of
// decode_realtime_into() and the service's decode_inbound() through its own reused view, which
// must agree; when they decode, into the JSON shape and the MQTT
// payloads, whose text must equal the documents' dump().
#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/protocol/decoded_message.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/message_json.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using namespace ecu2mqtt;

void require(bool condition, const char* what) {
    if (!condition) {
        std::fprintf(stderr, "fuzz_decoder: %s\n", what);
        std::abort();
    }
}

// Everything decode_message() says about an upload, as one text.
std::string everything_about(const RealtimeUpload& up, std::string_view bytes) {
    std::string text = message_to_json(EcuMessage{up}, bytes).dump();
    for (const auto& block : up.skipped_blocks)
        text += "\n" + std::to_string(block.offset) + " " + std::to_string(block.error_offset) +
                " " + block.reason + " " + block.raw;
    return text;
}

void check_payloads(const RealtimeView& view, const RealtimeUpload& up) {
    std::string text;
    append_ecu_state_payload(text, view, up.lifetime_energy_kwh, up.power_w, "last seen");
    require(text == ecu_state_payload(up, up.lifetime_energy_kwh, up.power_w, "last seen").dump(),
            "ECU state text differs from dump()");
    for (std::size_t i = 0; i < up.inverters.size(); ++i) {
        text.clear();
        append_inverter_state_payload(text, view.inverters[i], view.timestamp);
        require(text == inverter_state_payload(up.inverters[i], up.timestamp).dump(),
                "inverter state text differs from dump()");
        const auto known = known_inverter_from(up.inverters[i]);
        text.clear();
        append_absent_inverter_payload(text, known, up.timestamp);
        require(text == absent_inverter_payload(known, up.timestamp).dump(),
                "absent inverter text differs from dump()");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // Reused across inputs as the service reuses it: anything left over from an earlier input
    // would show as a difference from decode_message().
    static RealtimeView view;
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto result = decode_message(bytes);
    const auto* error = decode_error(result);
    // An error must point inside the message or just past it.
    require(!error || error->offset <= size, "error offset past the message");

    // The service's path: one view for every message, and the same result as a fresh decode.
    static RealtimeView service_view;
    const auto inbound = decode_inbound(bytes, service_view);
    const auto* inbound_error = decode_error(inbound.result);
    require((inbound_error == nullptr) == (error == nullptr),
            "the service's path disagrees on whether the message decodes");
    if (error)
        require(inbound_error->offset == error->offset && inbound_error->reason == error->reason,
                "the service's path reports a different error");
    else
        require(message_to_json(*decoded_message(inbound.result), bytes).dump() ==
                    message_to_json(*decoded_message(result), bytes).dump(),
                "the service's path decodes a different message");

    if (bytes.starts_with("APS18")) {
        const bool decoded = decode_realtime_into(bytes, view);
        require(decoded == !error, "the paths disagree on whether the upload decodes");
        if (error) {
            require(view.error.offset == error->offset && view.error.reason == error->reason,
                    "the paths report different errors");
            return 0;
        }
        const auto& up = std::get<RealtimeUpload>(*decoded_message(result));
        require(everything_about(to_realtime_upload(view), bytes) == everything_about(up, bytes),
                "the paths decode different uploads");
        check_payloads(view, up);
    }
    if (!error)
        (void)message_to_json(*decoded_message(result), bytes).dump();
    return 0;
}
