// libFuzzer target: bytes cut into reads of fuzzer-chosen sizes, through the framer and decoder.
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/protocol/framing.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    constexpr std::size_t kLimit = 4096;
    const std::size_t piece = 1 + data[0] % 64; // the first byte chooses the read size
    const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
    ecu2mqtt::MessageFramer framer(kLimit);
    std::size_t framed_bytes = 0;
    for (std::size_t at = 0; at < stream.size(); at += piece) {
        framer.append(stream.substr(at, piece));
        for (;;) {
            const auto frame = framer.next();
            if (frame.status == ecu2mqtt::Frame::Status::NeedMore)
                break;
            if (frame.status == ecu2mqtt::Frame::Status::TooLarge)
                return 0; // the listener closes the connection here
            if (frame.message.empty() || frame.message.size() > kLimit)
                std::abort();
            framed_bytes += frame.message.size();
            (void)ecu2mqtt::decode_message(frame.message);
        }
        if (framer.buffered() > kLimit + piece) // never holds more than the limit and one read
            std::abort();
    }
    if (framed_bytes + framer.buffered() > stream.size())
        std::abort();
    return 0;
}
