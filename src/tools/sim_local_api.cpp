#include "ecu2mqtt/tools/sim_local_api.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/protocol/inverter_models.hpp"
#include "ecu2mqtt/tools/solar_simulation.hpp"

#include <array>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace ecu2mqtt {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::string_view kTrailer = "END\n";

void put_unsigned(std::string& out, std::uint32_t value, int width) {
    for (int shift = 8 * (width - 1); shift >= 0; shift -= 8)
        out += static_cast<char>((value >> shift) & 0xff);
}

void put_bcd(std::string& out, std::string_view digits) {
    for (std::size_t i = 0; i + 1 < digits.size(); i += 2)
        out += static_cast<char>(((digits[i] - '0') << 4) | (digits[i + 1] - '0'));
}

std::string three_digits(std::size_t n) {
    auto text = std::to_string(n);
    return std::string(3 - std::min<std::size_t>(3, text.size()), '0') + text;
}

// `APS` + group + length (frame size − 1) + command + body + END\n.
std::string frame(std::string_view command, const std::string& body) {
    const std::size_t size = 3 + 2 + 4 + 4 + body.size() + kTrailer.size();
    auto length = std::to_string(size - 1);
    length.insert(0, 4 - length.size(), '0');
    return "APS11" + length + std::string(command) + body + std::string(kTrailer);
}

// A steady level per inverter, spread over the byte's range as real plants are.
int signal_level(std::size_t index) {
    return 90 + static_cast<int>((index * 53) % 160);
}

} // namespace

std::string_view sim_record_type(std::string_view uid, int channels) {
    const auto family = find_inverter_family(uid.substr(0, 3));
    const std::string_view name = family ? family->name : "";
    if (name == "QS1")
        return "03";
    if (name == "YC1000")
        return "02";
    if (name == "DS3")
        return "04";
    return channels == 4 ? "03" : "01";
}

std::string sim_ecu_info_reply(const SimPlantEcu& ecu, double lifetime_kwh, double power_w) {
    std::string body = ecu.id + "01";
    put_unsigned(body, static_cast<std::uint32_t>(lifetime_kwh * 10), 4);
    put_unsigned(body, static_cast<std::uint32_t>(power_w), 4);
    put_unsigned(body, 0, 4);       // today's energy: the uploads carry it
    body += std::string(7, '\xd0'); // no contact with the EMA, as when cloudless
    const auto count = static_cast<std::uint32_t>(ecu.inverters.size());
    put_unsigned(body, count, 2);       // registered
    put_unsigned(body, count, 2);       // online
    body += std::string("\x00\x01", 2); // the unknown field before the firmware
    body += three_digits(ecu.firmware.size()) + ecu.firmware;
    body += three_digits(ecu.time_zone.size()) + ecu.time_zone;
    body += std::string(12, '\0'); // the MAC addresses, unknown
    return frame("0001", body);
}

std::string sim_realtime_reply(const SimPlantEcu& ecu, const LocalDateTime& now) {
    const double watts = ecu.peak_watts * solar_fraction(now);
    std::string body = "00";
    body += "01"; // as in the posted replies
    put_unsigned(body, static_cast<std::uint32_t>(ecu.inverters.size()), 2);
    put_bcd(body, format_compact(now));
    for (const auto& inverter : ecu.inverters) {
        put_bcd(body, inverter.uid);
        const auto type = sim_record_type(inverter.uid, inverter.channels);
        body += '\x01'; // online
        body += type;
        put_unsigned(body, 500, 2);                                               // 50.0 Hz
        put_unsigned(body, static_cast<std::uint32_t>(100 + 20 + watts / 30), 2); // °C + 100
        const auto power = static_cast<std::uint32_t>(std::lround(watts));
        if (type == "03")
            for (std::uint32_t v : {power, 230u, power, power, power})
                put_unsigned(body, v, 2);
        else if (type == "02")
            for (std::uint32_t v : {power, 400u, power, 401u, power, 399u, power})
                put_unsigned(body, v, 2);
        else
            for (std::uint32_t v : {power, 230u, power, 230u})
                put_unsigned(body, v, 2);
    }
    return frame("0002", body);
}

std::string sim_signal_reply(const SimPlantEcu& ecu) {
    std::string body = "00";
    for (std::size_t i = 0; i < ecu.inverters.size(); ++i) {
        put_bcd(body, ecu.inverters[i].uid);
        body += static_cast<char>(signal_level(i));
    }
    return frame("0030", body);
}

SimLocalFault parse_sim_local_fault(const std::string& text) {
    if (text == "none")
        return SimLocalFault::None;
    if (text == "refuse")
        return SimLocalFault::Refuse;
    if (text == "silent")
        return SimLocalFault::Silent;
    if (text == "no-end")
        return SimLocalFault::NoEnd;
    if (text == "truncate")
        return SimLocalFault::Truncate;
    throw std::invalid_argument("--local-api-fault: expected none, refuse, silent, no-end or "
                                "truncate, got " +
                                text);
}

struct SimLocalApiServer::Impl {
    SimLocalApiConfig config;
    std::vector<SimPlantEcu> plant;
    asio::io_context io;
    tcp::acceptor acceptor{io};
    std::thread thread;

    mutable std::mutex mutex;
    LocalDateTime now;
    std::vector<double> lifetime_kwh;
    std::uint64_t requests = 0;
    int info_replies = 0;

    // The reply to one request, or nullopt for silence.
    std::optional<std::string> answer(const std::string& request) {
        const std::lock_guard lock(mutex);
        ++requests;
        const auto command = request.size() >= 13 ? request.substr(9, 4) : std::string();
        const auto id = request.size() >= 25 ? request.substr(13, 12) : std::string();
        if (command == "0001" && config.wedge_after_polls &&
            info_replies >= *config.wedge_after_polls)
            return std::nullopt;
        if (config.fault == SimLocalFault::Silent)
            return std::nullopt;
        std::size_t which = 0;
        for (std::size_t i = 0; i < plant.size(); ++i)
            if (plant[i].id == id)
                which = i;
        const auto& ecu = plant[which];
        std::string reply;
        if (command == "0001") {
            ++info_replies;
            reply = sim_ecu_info_reply(ecu, which < lifetime_kwh.size() ? lifetime_kwh[which] : 0,
                                       ecu.peak_watts * solar_fraction(now));
        } else if (command == "0002" && id == ecu.id)
            reply = sim_realtime_reply(ecu, now);
        else if (command == "0030" && id == ecu.id)
            reply = sim_signal_reply(ecu);
        else
            reply = "APS110015" + (command.empty() ? std::string("0000") : command) + "02\n";
        if (config.fault == SimLocalFault::NoEnd && reply.ends_with(kTrailer))
            reply.resize(reply.size() - kTrailer.size());
        if (config.fault == SimLocalFault::Truncate)
            reply.resize(reply.size() / 2);
        return reply;
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        boost::system::error_code ec;
        std::string request;
        std::array<char, 256> buffer{};
        while (!request.ends_with(kTrailer) && request.size() < 256) {
            const auto n = co_await socket.async_read_some(
                asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
            request.append(buffer.data(), n);
            if (ec)
                co_return;
        }
        const auto reply = answer(request);
        if (!reply) {
            // Holds the connection open until the poller gives up and closes it.
            co_await socket.async_read_some(asio::buffer(buffer),
                                            asio::redirect_error(asio::use_awaitable, ec));
            co_return;
        }
        co_await asio::async_write(socket, asio::buffer(*reply),
                                   asio::redirect_error(asio::use_awaitable, ec));
        socket.close(ec);
    }

    asio::awaitable<void> accept() {
        for (;;) {
            boost::system::error_code ec;
            auto socket =
                co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec)
                co_return;
            asio::co_spawn(io, serve(std::move(socket)), asio::detached);
        }
    }
};

SimLocalApiServer::SimLocalApiServer(SimLocalApiConfig config, std::vector<SimPlantEcu> plant,
                                     LocalDateTime start)
    : impl_(std::make_shared<Impl>()) {
    if (plant.empty())
        throw std::invalid_argument("no ECU to answer for on port 8899");
    impl_->config = std::move(config);
    impl_->plant = std::move(plant);
    impl_->now = start;
    if (impl_->config.fault == SimLocalFault::Refuse)
        return; // nothing listens: the ECU's port is closed
    const tcp::endpoint where(asio::ip::make_address(impl_->config.address), impl_->config.port);
    impl_->acceptor.open(where.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(where);
    impl_->acceptor.listen();
    asio::co_spawn(impl_->io, impl_->accept(), asio::detached);
    impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
}

SimLocalApiServer::~SimLocalApiServer() {
    impl_->io.stop();
    if (impl_->thread.joinable())
        impl_->thread.join();
}

void SimLocalApiServer::set_clock(const LocalDateTime& now,
                                  const std::vector<double>& lifetime_kwh) {
    const std::lock_guard lock(impl_->mutex);
    impl_->now = now;
    impl_->lifetime_kwh = lifetime_kwh;
}

std::uint64_t SimLocalApiServer::requests() const {
    const std::lock_guard lock(impl_->mutex);
    return impl_->requests;
}

} // namespace ecu2mqtt
