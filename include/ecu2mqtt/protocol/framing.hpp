// Cuts a TCP byte stream from an ECU into whole messages, however the bytes were split. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ecu2mqtt {

struct Frame {
    enum class Status { NeedMore, Message, TooLarge };
    Status status = Status::NeedMore;
    std::string message; // with Message: the whole message, trailer included
    std::string reason;  // with TooLarge: why
};

// Framing rules, in order:
//  - `APS…`: the 5-character `A`-padded length field at offset 5 gives length − 1; the message is
//    complete when that many bytes are in. If an `END\n` trailer arrives first, the message ends
//    there (the decoder then reports the length mismatch). Unreadable length: by trailer.
//  - `ECU11…`: the 4-digit field at offset 5 is the total length (peers' examples agree).
//  - anything else: up to and including the next `END\n`.
// Bytes between messages that are only line breaks are skipped.
class MessageFramer {
  public:
    explicit MessageFramer(std::size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

    void append(std::string_view bytes) { buffer_.append(bytes); }
    Frame next();

    std::size_t buffered() const { return buffer_.size(); }
    // Whatever was received but never completed a message; the framer is empty afterwards.
    std::string take_remainder();

  private:
    Frame emit(std::size_t size);
    Frame need_more_or_too_large();

    std::size_t max_message_bytes_;
    std::string buffer_;
    std::size_t trailer_scan_from_ = 0; // bytes before this are known to hold no trailer
};

} // namespace ecu2mqtt
