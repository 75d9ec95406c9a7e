// libFuzzer target: any bytes into the decoder (and, when they decode, into the JSON shape).
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/message_json.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const auto result = ecu2mqtt::decode_message(bytes);
    if (const auto* error = ecu2mqtt::decode_error(result)) {
        if (error->offset > size) // an error must point inside the message or just past it
            std::abort();
        return 0;
    }
    (void)ecu2mqtt::message_to_json(*ecu2mqtt::decoded_message(result), bytes).dump();
    return 0;
}
