#include "ecu2mqtt/tools/sim_local_api.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/protocol/local_api.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

namespace test_sim_local_api {
namespace {

SimPlantEcu plant() {
    return {"216000000001",
            {{"806000000000", 4}, {"408000000001", 2}, {"501000000002", 4}},
            "ECU_R_1.3.6C",
            "Asia/Shanghai",
            300};
}

// One request on its own connection, read to the server's close.
std::string ask(std::uint16_t port, const std::string& request) {
    namespace asio = boost::asio;
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    asio::write(socket, asio::buffer(request));
    std::string reply;
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(reply), ec);
    return reply;
}

std::uint16_t free_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return probe.local_endpoint().port();
}

} // namespace

TEST_CASE("the simulator's port-8899 replies decode as the ECU's own", "[sim_local_api]") {
    const auto ecu = plant();
    const auto info = decode_local_ecu_info(sim_ecu_info_reply(ecu, 1234.5, 600));
    REQUIRE(local_reply(info));
    CHECK(local_reply(info)->ecu_id == "216000000001");
    CHECK(local_reply(info)->firmware == "ECU_R_1.3.6C");
    CHECK(local_reply(info)->time_zone == "Asia/Shanghai");
    CHECK(local_reply(info)->inverters_registered == 3);
    CHECK(local_reply(info)->lifetime_energy_kwh == Approx(1234.5));
    CHECK_FALSE(local_reply(info)->last_ema_contact);

    const auto realtime = decode_local_realtime(sim_realtime_reply(ecu, {2024, 6, 21, 13, 0, 0}));
    REQUIRE(local_reply(realtime));
    const auto& inverters = local_reply(realtime)->inverters;
    REQUIRE(inverters.size() == 3);
    CHECK(inverters[0].type_code == "03"); // QS1
    CHECK(inverters[1].type_code == "01"); // YC600
    CHECK(inverters[2].type_code == "02"); // YC1000, 3-phase
    CHECK(inverters[2].ac_voltage_v.size() == 3);
    for (const auto& inverter : inverters) {
        CHECK(inverter.online);
        CHECK(*inverter.frequency_hz == Approx(50));
        CHECK(*inverter.temperature_c > 0);
        CHECK(*inverter.channel_power_w.at(0) > 100);
    }

    const auto signals = decode_local_signal_levels(sim_signal_reply(ecu));
    REQUIRE(local_reply(signals));
    REQUIRE(local_reply(signals)->levels.size() == 3);
    CHECK(local_reply(signals)->levels[1].uid == "408000000001");
}

TEST_CASE("the simulator's port 8899 answers, and misbehaves on request", "[sim_local_api]") {
    const auto info_request = *encode_local_request(LocalCommand::EcuInfo, "");
    const auto signal_request = *encode_local_request(LocalCommand::SignalLevels, "216000000001");
    SimLocalApiConfig config;
    config.port = free_port();

    SECTION("answers, then wedges after one poll") {
        config.wedge_after_polls = 1;
        SimLocalApiServer server(config, {plant()}, {2024, 6, 21, 12, 0, 0});
        CHECK(local_reply(decode_local_ecu_info(ask(config.port, info_request))));
        CHECK(local_reply(decode_local_signal_levels(ask(config.port, signal_request))));
        // Wedged: the client gives up; the server holds the connection without a byte.
        namespace asio = boost::asio;
        asio::io_context io;
        asio::ip::tcp::socket socket(io);
        socket.connect({asio::ip::make_address("127.0.0.1"), config.port});
        asio::write(socket, asio::buffer(info_request));
        socket.non_blocking(true);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
        std::array<char, 16> byte{};
        boost::system::error_code ec;
        std::size_t received = 0;
        while (std::chrono::steady_clock::now() < until)
            received += socket.read_some(asio::buffer(byte), ec);
        CHECK(received == 0);
        CHECK(ec == asio::error::would_block);
        CHECK(server.requests() == 3);
    }
    SECTION("no END") {
        config.fault = SimLocalFault::NoEnd;
        SimLocalApiServer server(config, {plant()}, {2024, 6, 21, 12, 0, 0});
        const auto reply = ask(config.port, info_request);
        CHECK_FALSE(reply.ends_with("END\n"));
        CHECK(local_reply(decode_local_ecu_info(reply)));
    }
    SECTION("truncate") {
        config.fault = SimLocalFault::Truncate;
        SimLocalApiServer server(config, {plant()}, {2024, 6, 21, 12, 0, 0});
        CHECK(local_error(decode_local_signal_levels(ask(config.port, signal_request))));
    }
    SECTION("refuse") {
        config.fault = SimLocalFault::Refuse;
        SimLocalApiServer server(config, {plant()}, {2024, 6, 21, 12, 0, 0});
        CHECK_THROWS(ask(config.port, info_request));
    }
    CHECK_THROWS_AS(parse_sim_local_fault("reboot"), std::invalid_argument);
}

} // namespace test_sim_local_api
