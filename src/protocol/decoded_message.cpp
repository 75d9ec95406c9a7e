#include "ecu2mqtt/protocol/decoded_message.hpp"

#include "ecu2mqtt/protocol/decoder.hpp"

namespace ecu2mqtt {

DecodedMessage decode_inbound(std::string_view raw) {
    RealtimeView view;
    return decode_inbound(raw, view);
}

DecodedMessage decode_inbound(std::string_view raw, RealtimeView& reused) {
    DecodedMessage out{decode_message(raw, reused), {}, {}, "undecodable"};
    if (const auto* message = decoded_message(out.result)) {
        out.ecu_id = ecu_id_of(*message).value_or("");
        out.timestamp = timestamp_of(*message);
        out.type = message_type_name(*message);
    } else {
        out.ecu_id = guess_ecu_id(raw).value_or("");
        out.timestamp = guess_timestamp(raw);
    }
    return out;
}

} // namespace ecu2mqtt
