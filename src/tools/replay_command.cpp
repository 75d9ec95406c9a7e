#include "ecu2mqtt/tools/replay_command.hpp"

#include "ecu2mqtt/app/recorder.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"
#include "ecu2mqtt/protocol/printable.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <fstream>
#include <thread>

namespace ecu2mqtt {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::chrono::seconds kReplyTimeout{5};

// "2024-02-06T11:22:20+01:00" -> seconds since the epoch (UTC); nullopt when malformed.
std::optional<std::int64_t> instant_of(const std::string& iso) {
    if (iso.size() < 25)
        return std::nullopt;
    const std::string compact = iso.substr(0, 4) + iso.substr(5, 2) + iso.substr(8, 2) +
                                iso.substr(11, 2) + iso.substr(14, 2) + iso.substr(17, 2);
    const auto local = parse_compact_timestamp(compact);
    if (!local)
        return std::nullopt;
    const int sign = iso[19] == '-' ? -1 : 1;
    const int offset =
        sign * (std::stoi(iso.substr(20, 2)) * 3600 + std::stoi(iso.substr(23, 2)) * 60);
    return to_epoch_seconds(*local) - offset;
}

// One ECU conversation: connect, send, collect the reply until the service closes, the
// expected length arrived, or the timeout.
std::string converse(asio::io_context& io, const std::string& host, std::uint16_t port,
                     const std::string& message, std::size_t expected_reply) {
    tcp::socket socket(io);
    tcp::resolver resolver(io);
    asio::connect(socket, resolver.resolve(host, std::to_string(port)));
    asio::write(socket, asio::buffer(message));
    std::string reply;
    std::array<char, 1024> buffer{};
    boost::system::error_code ec;
    const auto deadline = std::chrono::steady_clock::now() + kReplyTimeout;
    while (reply.size() < std::max<std::size_t>(expected_reply, 1) &&
           std::chrono::steady_clock::now() < deadline) {
        socket.non_blocking(true);
        const std::size_t n = socket.read_some(asio::buffer(buffer), ec);
        if (ec == asio::error::would_block) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            continue;
        }
        reply.append(buffer.data(), n);
        if (ec)
            break;
    }
    return reply;
}

} // namespace

int run_replay(const std::vector<std::string>& files, const ReplayOptions& options,
               std::ostream& out, std::ostream& err) {
    asio::io_context io;
    int sent = 0, same = 0, different = 0, failed = 0;
    std::optional<std::int64_t> previous;
    for (const auto& file : files) {
        std::ifstream in(file);
        if (!in) {
            err << file << ": cannot open\n";
            ++failed;
            continue;
        }
        std::string text;
        for (int line_number = 1; std::getline(in, text); ++line_number) {
            if (text.empty())
                continue;
            RecordedMessage recorded;
            try {
                recorded = parse_recording_line(text);
            } catch (const std::invalid_argument& e) {
                err << file << ":" << line_number << ": " << e.what() << '\n';
                ++failed;
                continue;
            }
            const auto instant = instant_of(recorded.time);
            if (options.speed > 0 && previous && instant && *instant > *previous)
                std::this_thread::sleep_for(
                    std::chrono::duration<double>((*instant - *previous) / options.speed));
            if (instant)
                previous = instant;
            const std::uint16_t port = options.port.value_or(recorded.port);
            try {
                const std::string reply = converse(io, options.host, port, recorded.message,
                                                   recorded.reply ? recorded.reply->size() : 0);
                ++sent;
                const bool as_recorded = recorded.reply && reply == *recorded.reply;
                (as_recorded ? same : different) += 1;
                out << recorded.time << " port " << port << ": sent " << recorded.message.size()
                    << " bytes, reply \"" << printable_text(reply) << "\""
                    << (as_recorded ? ""
                                    : " (recorded: \"" +
                                          printable_text(recorded.reply.value_or("")) + "\")")
                    << '\n';
            } catch (const boost::system::system_error& e) {
                err << file << ":" << line_number << ": " << options.host << ":" << port << ": "
                    << e.what() << '\n';
                ++failed;
            }
        }
    }
    out << "replayed " << sent << " messages: " << same << " replies as recorded, " << different
        << " different, " << failed << " not delivered\n";
    return failed == 0 ? 0 : 1;
}

} // namespace ecu2mqtt
