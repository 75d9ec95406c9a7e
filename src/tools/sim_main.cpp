// ecu2mqtt-sim: emulates ECUs uploading to a service (or to EMA's stand-in), for tests,
// benchmarks and support. Prints a JSON summary; exit 1 if any upload went unanswered.
#include "ecu2mqtt/protocol/ema_reply.hpp"
#include "ecu2mqtt/protocol/inverter_models.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"
#include "ecu2mqtt/protocol/upload_encoder.hpp"
#include "ecu2mqtt/tools/sim_local_api.hpp"
#include "ecu2mqtt/tools/solar_simulation.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <charconv>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace {

using namespace ecu2mqtt;
namespace asio = boost::asio;
using asio::ip::tcp;

struct SimOptions {
    std::string host = "127.0.0.1";
    std::vector<std::uint16_t> ports{8995, 8996, 8997};
    int ecus = 1;
    int inverters = 2;
    std::vector<std::string> models{"806"};
    LocalDateTime start{2024, 6, 21, 0, 0, 0};
    double hours = 24;
    int interval_seconds = 300;
    double speed = 0; // simulated seconds per real second; 0: as fast as possible
    int peak_watts = 300;
    int night_start = 21, night_end = 5;
    std::uint32_t seed = 1;
    int timeout_ms = 5000;
    std::string from;                           // source address of the uploads
    std::optional<SimLocalApiConfig> local_api; // --local-api: port 8899 served
    std::string firmware = "ECU_R_1.3.6C";
    std::string time_zone = "Europe/Amsterdam";
    double linger_seconds = 0;
};

constexpr const char* kUsage =
    "Usage: ecu2mqtt-sim [OPTIONS]\n"
    "Emulates APsystems ECUs uploading real-time data every interval, and re-sending what the\n"
    "server's reply asks for (backfill). Prints a JSON summary.\n\n"
    "  --to HOST             where the service listens (default 127.0.0.1)\n"
    "  --ports LIST          upload ports, used in turn (default 8995,8996,8997)\n"
    "  --ecus N              simulated ECUs, all uploading at the same moment (default 1)\n"
    "  --inverters M         inverters per ECU (default 2)\n"
    "  --models CODES        model codes, used in turn, e.g. 806,408 (default 806)\n"
    "  --start YYYY-MM-DDThh:mm:ss  ECU clock at the start (default 2024-06-21T00:00:00)\n"
    "  --hours H             simulated time (default 24; 0: a single upload)\n"
    "  --interval S          seconds between uploads (default 300)\n"
    "  --speed X             simulated seconds per real second (default 0: no pauses)\n"
    "  --peak-watts W        peak DC power per channel (default 300)\n"
    "  --night A-B           hours without uploads (default 21-5; 0-0: none)\n"
    "  --seed N              varies the channels' output (default 1)\n"
    "  --timeout-ms N        wait for each reply at most this long (default 5000)\n"
    "  --from ADDR           upload from this local address (e.g. 127.0.0.7), so that the\n"
    "                        service's --poll-ecus auto polls the port 8899 served there\n\n"
    "Port 8899 (the ECU's local API; off unless --local-api is given):\n"
    "  --local-api ADDR[:PORT]  answer ECU info (0001), real-time data (0002) and signal\n"
    "                        levels (0030) from the simulated plant (port 8899 by default)\n"
    "  --local-api-fault F   misbehave as ECUs in the field do: none (default), refuse (nothing\n"
    "                        listens), silent (accept, send nothing), no-end (no END\\n),\n"
    "                        truncate (the first half of each reply)\n"
    "  --local-api-wedge-after N  answer N polls (ECU info requests), then stay silent\n"
    "  --firmware TEXT       the firmware that ECU info names (default ECU_R_1.3.6C)\n"
    "  --time-zone NAME      the time zone that ECU info names (default Europe/Amsterdam)\n"
    "  --linger S            keep serving port 8899 for S seconds after the last upload\n";

int to_int(const std::string& text, const char* what) {
    int value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || ptr != text.data() + text.size())
        throw std::invalid_argument(std::string(what) + ": not a whole number: " + text);
    return value;
}

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ','))
        out.push_back(item);
    return out;
}

SimOptions parse(int argc, char** argv) {
    SimOptions o;
    SimLocalFault fault = SimLocalFault::None;
    std::optional<int> wedge_after;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            std::exit(0);
        }
        if (i + 1 >= argc)
            throw std::invalid_argument(arg + " needs a value");
        const std::string v = argv[++i];
        if (arg == "--to")
            o.host = v;
        else if (arg == "--ports") {
            o.ports.clear();
            for (const auto& p : split(v))
                o.ports.push_back(static_cast<std::uint16_t>(to_int(p, "--ports")));
        } else if (arg == "--ecus")
            o.ecus = to_int(v, "--ecus");
        else if (arg == "--inverters")
            o.inverters = to_int(v, "--inverters");
        else if (arg == "--models")
            o.models = split(v);
        else if (arg == "--start") {
            std::string compact;
            for (char c : v)
                if (c >= '0' && c <= '9')
                    compact += c;
            const auto t = parse_compact_timestamp(compact);
            if (!t)
                throw std::invalid_argument("--start: expected YYYY-MM-DDThh:mm:ss, got " + v);
            o.start = *t;
        } else if (arg == "--hours")
            o.hours = std::stod(v);
        else if (arg == "--interval")
            o.interval_seconds = to_int(v, "--interval");
        else if (arg == "--speed")
            o.speed = std::stod(v);
        else if (arg == "--peak-watts")
            o.peak_watts = to_int(v, "--peak-watts");
        else if (arg == "--night") {
            const auto dash = v.find('-');
            if (dash == std::string::npos)
                throw std::invalid_argument("--night: expected A-B, got " + v);
            o.night_start = to_int(v.substr(0, dash), "--night");
            o.night_end = to_int(v.substr(dash + 1), "--night");
        } else if (arg == "--seed")
            o.seed = static_cast<std::uint32_t>(to_int(v, "--seed"));
        else if (arg == "--timeout-ms")
            o.timeout_ms = to_int(v, "--timeout-ms");
        else if (arg == "--from")
            o.from = v;
        else if (arg == "--local-api") {
            auto& api = o.local_api.emplace();
            const auto colon = v.find(':');
            api.address = v.substr(0, colon);
            if (colon != std::string::npos)
                api.port = static_cast<std::uint16_t>(to_int(v.substr(colon + 1), "--local-api"));
        } else if (arg == "--local-api-fault")
            fault = parse_sim_local_fault(v);
        else if (arg == "--local-api-wedge-after")
            wedge_after = to_int(v, "--local-api-wedge-after");
        else if (arg == "--firmware")
            o.firmware = v;
        else if (arg == "--time-zone")
            o.time_zone = v;
        else if (arg == "--linger")
            o.linger_seconds = std::stod(v);
        else
            throw std::invalid_argument("unknown option " + arg + " (see --help)");
    }
    if (o.ecus < 1 || o.inverters < 0 || o.interval_seconds < 1 || o.ports.empty() ||
        o.models.empty())
        throw std::invalid_argument("nothing to simulate with these options");
    if (o.local_api) {
        o.local_api->fault = fault;
        o.local_api->wedge_after_polls = wedge_after;
    } else if (fault != SimLocalFault::None || wedge_after)
        throw std::invalid_argument(
            "--local-api-fault and --local-api-wedge-after need --local-api");
    return o;
}

struct Tally {
    std::uint64_t uploads = 0, answered = 0, unanswered = 0, resent = 0;
    std::chrono::steady_clock::duration slowest_reply{};
};

// One ECU conversation: send, read the 17-byte acknowledgement (or whatever comes first).
asio::awaitable<std::optional<std::string>> converse(tcp::endpoint target, std::string message,
                                                     std::chrono::milliseconds timeout,
                                                     std::string from, Tally& tally) {
    auto executor = co_await asio::this_coro::executor;
    tcp::socket socket(executor);
    if (!from.empty()) {
        socket.open(target.protocol());
        socket.bind(tcp::endpoint(asio::ip::make_address(from), 0));
    }
    const auto sent_at = std::chrono::steady_clock::now();
    asio::steady_timer timer(executor, timeout);
    timer.async_wait([&socket](boost::system::error_code ec) {
        if (!ec) {
            boost::system::error_code ignored;
            socket.close(ignored);
        }
    });
    boost::system::error_code ec;
    co_await socket.async_connect(target, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec)
        co_await asio::async_write(socket, asio::buffer(message),
                                   asio::redirect_error(asio::use_awaitable, ec));
    std::string reply(17, '\0');
    std::size_t n = 0;
    if (!ec)
        n = co_await asio::async_read(socket, asio::buffer(reply),
                                      asio::redirect_error(asio::use_awaitable, ec));
    timer.cancel();
    if (n == 0)
        co_return std::nullopt;
    tally.slowest_reply = std::max(tally.slowest_reply, std::chrono::steady_clock::now() - sent_at);
    reply.resize(n);
    co_return reply;
}

asio::awaitable<void> upload_and_backfill(SimulatedEcu& ecu, tcp::endpoint target,
                                          std::string message, LocalDateTime t,
                                          std::chrono::milliseconds timeout, std::string from,
                                          Tally& tally) {
    ++tally.uploads;
    const auto reply = co_await converse(target, message, timeout, from, tally);
    if (!reply) {
        ++tally.unanswered;
        co_return;
    }
    ++tally.answered;
    // "101" + the time the server has data up to; older than expected: send what follows again.
    const auto acknowledged = reply->size() == 17 && reply->starts_with("101")
                                  ? parse_compact_timestamp(reply->substr(3))
                                  : std::nullopt;
    if (!acknowledged || *acknowledged >= add_seconds(t, -300))
        co_return;
    for (const auto& again : ecu.resend_after(*acknowledged, t)) {
        ++tally.resent;
        if (!co_await converse(target, again, timeout, from, tally))
            ++tally.unanswered;
    }
    // And the current upload after them, so that it is not the one missing.
    ++tally.resent;
    if (!co_await converse(target, message, timeout, from, tally))
        ++tally.unanswered;
}

} // namespace

int main(int argc, char** argv) {
    SimOptions o;
    try {
        o = parse(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "ecu2mqtt-sim: " << e.what() << '\n';
        return 2;
    }
    std::vector<SimulatedEcu> ecus;
    std::vector<std::vector<SimulatedInverter>> inverter_lists;
    for (int e = 0; e < o.ecus; ++e) {
        std::vector<SimulatedInverter> inverters;
        for (int i = 0; i < o.inverters; ++i) {
            const std::string& code = o.models[static_cast<std::size_t>(i) % o.models.size()];
            const auto family = find_inverter_family(code);
            inverters.push_back(
                {code + zero_padded(e * 1000 + i, 9), family ? family->channels : 2});
        }
        inverter_lists.push_back(inverters);
        ecus.emplace_back("2160" + zero_padded(e + 1, 8), std::move(inverters), o.peak_watts,
                          o.seed * 7919u + static_cast<std::uint32_t>(e),
                          1000.0 * 1000 * (1 + e % 7));
    }

    std::optional<SimLocalApiServer> local_api;
    if (o.local_api) {
        std::vector<SimPlantEcu> plant;
        for (int e = 0; e < o.ecus; ++e) {
            SimPlantEcu ecu{
                ecus[static_cast<std::size_t>(e)].id(), {}, o.firmware, o.time_zone, o.peak_watts};
            for (const auto& inverter : inverter_lists[static_cast<std::size_t>(e)])
                ecu.inverters.push_back({inverter.uid, inverter.channels});
            plant.push_back(std::move(ecu));
        }
        try {
            local_api.emplace(*o.local_api, std::move(plant), o.start);
        } catch (const std::exception& e) {
            std::cerr << "ecu2mqtt-sim: port 8899 at " << o.local_api->address << ':'
                      << o.local_api->port << ": " << e.what() << '\n';
            return 2;
        }
    }

    asio::io_context io;
    tcp::resolver resolver(io);
    std::vector<tcp::endpoint> targets;
    for (const auto port : o.ports)
        targets.push_back(*resolver.resolve(o.host, std::to_string(port)).begin());

    Tally tally;
    const auto wall_start = std::chrono::steady_clock::now();
    const auto total = static_cast<std::int64_t>(o.hours * 3600);
    std::int64_t since_previous = o.interval_seconds;
    std::size_t tick = 0;
    for (std::int64_t offset = 0; offset <= total;
         offset += o.interval_seconds, since_previous += o.interval_seconds) {
        const LocalDateTime t = add_seconds(o.start, offset);
        if (!ecu_uploads_at(t, o.night_start, o.night_end))
            continue; // the ECU keeps producing nothing and says nothing at night
        const auto target = targets[tick++ % targets.size()];
        for (auto& ecu : ecus)
            asio::co_spawn(io,
                           upload_and_backfill(ecu, target, ecu.upload_at(t, since_previous), t,
                                               std::chrono::milliseconds(o.timeout_ms), o.from,
                                               tally),
                           asio::detached);
        since_previous = 0;
        if (local_api) {
            std::vector<double> lifetime_kwh;
            for (const auto& ecu : ecus)
                lifetime_kwh.push_back(ecu.lifetime_wh() / 1000.0);
            local_api->set_clock(t, lifetime_kwh);
        }
        io.run();
        io.restart();
        if (o.speed > 0)
            std::this_thread::sleep_for(
                std::chrono::duration<double>(o.interval_seconds / o.speed));
    }
    if (local_api && o.linger_seconds > 0)
        std::this_thread::sleep_for(std::chrono::duration<double>(o.linger_seconds));
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

    nlohmann::json summary{
        {"uploads", tally.uploads},
        {"answered", tally.answered},
        {"unanswered", tally.unanswered},
        {"resent", tally.resent},
        {"wall_seconds", wall},
        {"slowest_reply_ms",
         std::chrono::duration_cast<std::chrono::milliseconds>(tally.slowest_reply).count()}};
    if (local_api)
        summary["local_api_requests"] = local_api->requests();
    auto list = nlohmann::json::array();
    for (const auto& ecu : ecus)
        list.push_back({{"id", ecu.id()},
                        {"lifetime_kwh", ecu.lifetime_wh() / 1000.0},
                        {"produced_kwh_by_day", ecu.produced_kwh_by_day()}});
    summary["ecus"] = std::move(list);
    std::cout << summary.dump() << '\n';
    return tally.unanswered == 0 ? 0 : 1;
}
