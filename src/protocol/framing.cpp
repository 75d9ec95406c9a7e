#include "ecu2mqtt/protocol/framing.hpp"

#include <optional>

namespace ecu2mqtt {
namespace {

constexpr std::string_view kTrailer = "END\n";

std::optional<std::size_t> parse_length(std::string_view field, bool allow_a_padding) {
    std::size_t i = 0;
    if (allow_a_padding)
        while (i < field.size() && field[i] == 'A')
            ++i;
    if (i == field.size())
        return std::nullopt;
    std::size_t value = 0;
    for (; i < field.size(); ++i) {
        if (field[i] < '0' || field[i] > '9')
            return std::nullopt;
        value = value * 10 + static_cast<std::size_t>(field[i] - '0');
    }
    return value;
}

} // namespace

Frame MessageFramer::next() {
    std::size_t skip = 0;
    while (skip < buffer_.size() && (buffer_[skip] == '\n' || buffer_[skip] == '\r'))
        ++skip;
    if (skip > 0) {
        buffer_.erase(0, skip);
        trailer_scan_from_ = trailer_scan_from_ > skip ? trailer_scan_from_ - skip : 0;
    }
    if (buffer_.empty())
        return {};

    const std::string_view view = buffer_;
    std::optional<std::size_t> declared_size;
    if (view.starts_with("APS") && view.size() >= 10) {
        if (const auto length = parse_length(view.substr(5, 5), true))
            declared_size = *length + 1;
    } else if (view.starts_with("ECU11") && view.size() >= 9) {
        declared_size = parse_length(view.substr(5, 4), false);
    } else if (std::string_view("APS").starts_with(view.substr(0, 3)) && view.size() < 10) {
        return need_more_or_too_large(); // could still become an APS header
    }

    if (declared_size) {
        if (*declared_size > max_message_bytes_)
            return {Frame::Status::TooLarge,
                    {},
                    "length field claims " + std::to_string(*declared_size) +
                        " bytes, over the limit of " + std::to_string(max_message_bytes_)};
        if (*declared_size > 0 && buffer_.size() >= *declared_size) {
            // A trailer inside the declared size means the length field lies: cut at the trailer.
            const auto early = view.substr(0, *declared_size).find(kTrailer);
            if (early != std::string_view::npos && early + kTrailer.size() < *declared_size)
                return emit(early + kTrailer.size());
            return emit(*declared_size);
        }
    }

    const auto scan_from = trailer_scan_from_ >= 3 ? trailer_scan_from_ - 3 : 0;
    const auto trailer = view.find(kTrailer, scan_from);
    if (trailer != std::string_view::npos)
        return emit(trailer + kTrailer.size());
    trailer_scan_from_ = buffer_.size();
    return need_more_or_too_large();
}

Frame MessageFramer::emit(std::size_t size) {
    Frame frame{Frame::Status::Message, buffer_.substr(0, size), {}};
    buffer_.erase(0, size);
    trailer_scan_from_ = 0;
    return frame;
}

Frame MessageFramer::need_more_or_too_large() {
    if (buffer_.size() > max_message_bytes_)
        return {Frame::Status::TooLarge,
                {},
                std::to_string(buffer_.size()) +
                    " bytes without a complete message, over the "
                    "limit of " +
                    std::to_string(max_message_bytes_)};
    return {};
}

std::string MessageFramer::take_remainder() {
    std::string rest;
    rest.swap(buffer_);
    trailer_scan_from_ = 0;
    return rest;
}

} // namespace ecu2mqtt
