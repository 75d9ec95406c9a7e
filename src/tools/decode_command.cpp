#include "ecu2mqtt/tools/decode_command.hpp"

#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/framing.hpp"
#include "ecu2mqtt/protocol/message_json.hpp"

#include <fstream>
#include <iterator>

namespace ecu2mqtt {
namespace {

constexpr std::size_t kMaxMessageBytes = 16 * 1024 * 1024;

// Returns false when any message of `input` failed.
bool decode_stream(const std::string& name, std::istream& input, std::ostream& out,
                   std::ostream& err) {
    const std::string bytes{std::istreambuf_iterator<char>(input),
                            std::istreambuf_iterator<char>()};
    MessageFramer framer(kMaxMessageBytes);
    framer.append(bytes);
    bool all_ok = true;
    std::size_t consumed = 0;
    for (;;) {
        const std::size_t before = framer.buffered();
        Frame frame = framer.next();
        if (frame.status == Frame::Status::NeedMore)
            break;
        if (frame.status == Frame::Status::TooLarge) {
            err << name << ": offset " << consumed + (before - framer.buffered()) << ": "
                << frame.reason << '\n';
            framer.take_remainder();
            return false;
        }
        // The framer may have skipped line breaks before the message.
        const std::size_t message_start =
            consumed + (before - framer.buffered()) - frame.message.size();
        consumed += before - framer.buffered();
        const DecodeResult result = decode_message(frame.message);
        if (const auto* error = decode_error(result)) {
            err << name << ": message at offset " << message_start << ": offset "
                << message_start + error->offset << ": " << error->reason << '\n';
            all_ok = false;
            continue;
        }
        const EcuMessage& message = *decoded_message(result);
        if (const auto* upload = std::get_if<RealtimeUpload>(&message))
            for (const auto& block : upload->skipped_blocks) {
                err << name << ": message at offset " << message_start << ": inverter block at "
                    << message_start + block.offset << " left out: offset "
                    << message_start + block.error_offset << ": " << block.reason << '\n';
                all_ok = false;
            }
        out << message_to_json(message, frame.message).dump() << '\n';
    }
    std::string rest = framer.take_remainder();
    if (rest.find_first_not_of("\r\n \t") != std::string::npos) {
        err << name << ": offset " << consumed << ": incomplete message at end of input ("
            << rest.size() << " bytes without a trailer)\n";
        all_ok = false;
    }
    return all_ok;
}

} // namespace

int run_decode(const std::vector<std::string>& files, std::istream& in, std::ostream& out,
               std::ostream& err) {
    bool all_ok = true;
    if (files.empty())
        return decode_stream("stdin", in, out, err) ? 0 : 1;
    for (const auto& file : files) {
        if (file == "-") {
            all_ok = decode_stream("stdin", in, out, err) && all_ok;
            continue;
        }
        std::ifstream input(file, std::ios::binary);
        if (!input) {
            err << file << ": cannot open\n";
            all_ok = false;
            continue;
        }
        all_ok = decode_stream(file, input, out, err) && all_ok;
    }
    return all_ok ? 0 : 1;
}

} // namespace ecu2mqtt
