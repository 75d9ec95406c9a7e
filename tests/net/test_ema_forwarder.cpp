// The forwarder's deadlines against an EMA stand-in that trickles its reply or never answers:
// the reply is collected until EMA goes quiet, never past the deadline, and ending the exchange
// or the whole io_context early leaves no timer touching a freed socket (checked under ASan).
#include "ecu2mqtt/net/ema_forwarder.hpp"
#include "support/net.hpp"
#include "support/test_paths.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <tuple>
#include <unistd.h>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_ema_forwarder {
namespace {

// Accepts one connection, reads the message, then sends `pieces` with `gap` between them and
// keeps the connection open until `hold` has passed.
class TricklingEma {
  public:
    TricklingEma(std::vector<std::string> pieces, std::chrono::milliseconds gap,
                 std::chrono::milliseconds hold) {
        std::tie(fd_, port_) = test::bound_loopback_socket(SOCK_STREAM);
        ::listen(fd_, 4);
        thread_ = std::thread([this, pieces = std::move(pieces), gap, hold] {
            const int client = ::accept(fd_, nullptr, nullptr);
            if (client < 0)
                return;
            std::string request;
            char buf[2048];
            while (request.find("END\n") == std::string::npos) {
                const auto n = ::recv(client, buf, sizeof buf, 0);
                if (n <= 0)
                    break;
                request.append(buf, static_cast<std::size_t>(n));
            }
            const auto start = std::chrono::steady_clock::now();
            for (const auto& piece : pieces) {
                ::send(client, piece.data(), piece.size(), MSG_NOSIGNAL);
                std::this_thread::sleep_for(gap);
            }
            std::this_thread::sleep_until(start + hold);
            ::close(client);
        });
    }
    ~TricklingEma() {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        thread_.join();
    }
    std::uint16_t port() const { return port_; }

  private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

ForwarderConfig loopback_ema(std::uint16_t port, std::chrono::milliseconds timeout) {
    ForwarderConfig config;
    config.host = "127.0.0.1";
    config.port = port;
    config.timeout = timeout;
    config.quiet = 150ms;
    return config;
}

} // namespace

// One exchange with `ema` on its own io_context: the reply and how long it took.
std::pair<UpstreamReply, std::chrono::steady_clock::duration>
exchange_with(TricklingEma& ema, std::chrono::milliseconds timeout, Logger& log) {
    boost::asio::io_context io;
    EmaForwarder forwarder(io.get_executor(), loopback_ema(ema.port(), timeout), log);
    UpstreamReply reply;
    boost::asio::co_spawn(
        io, forwarder.exchange(8995, test::captured_upload()),
        [&](std::exception_ptr, UpstreamReply result) { reply = std::move(result); });
    const auto start = std::chrono::steady_clock::now();
    io.run();
    return {std::move(reply), std::chrono::steady_clock::now() - start};
}

TEST_CASE("a reply in pieces is collected until EMA goes quiet, never past the deadline") {
    std::stringstream log_text;
    Logger log(log_text, LogLevel::Debug);
    SECTION("quiet before the deadline") {
        TricklingEma ema({"10120240", "20611", "2000"}, 60ms, 1500ms);
        const auto [reply, waited] = exchange_with(ema, 1000ms, log);
        CHECK(reply.bytes == "10120240206112000");
        CHECK(waited < 800ms); // ended by the quiet period
    }
    SECTION("still trickling at the deadline") {
        TricklingEma ema({"1", "0", "1", "2", "0", "2", "4"}, 100ms, 1500ms);
        const auto [reply, waited] = exchange_with(ema, 350ms, log);
        REQUIRE(reply.bytes);
        CHECK(reply.bytes->size() < 7); // what came before the deadline
        CHECK(waited < 600ms);
    }
}

TEST_CASE("a reply longer than 64 KiB is not relayed, and reading it stops there") {
    std::stringstream log_text;
    Logger log(log_text, LogLevel::Debug);
    TricklingEma ema({std::string(40000, '1'), std::string(40000, '1'), std::string(40000, '1')},
                     20ms, 1500ms);
    const auto [reply, waited] = exchange_with(ema, 1000ms, log);
    CHECK_FALSE(reply.bytes);
    CHECK_THAT(reply.failure, Catch::Contains("longer than 65536 bytes"));
    CHECK(waited < 800ms); // not the whole deadline
}

TEST_CASE("an exchange cut short with its io_context leaves no timer behind") {
    std::stringstream log_text;
    Logger log(log_text, LogLevel::Debug);
    TricklingEma ema({}, 0ms, 600ms); // reads the message, never answers
    {
        boost::asio::io_context io;
        EmaForwarder forwarder(io.get_executor(), loopback_ema(ema.port(), 400ms), log);
        bool finished = false;
        boost::asio::co_spawn(io, forwarder.exchange(8995, test::captured_upload()),
                              [&](std::exception_ptr, UpstreamReply) { finished = true; });
        io.run_for(100ms); // mid-exchange: connected, waiting for the reply
        CHECK_FALSE(finished);
    } // the io_context goes with the suspended exchange, its socket and its armed timer
    SUCCEED("no use after free (the sanitizer build checks)");
}

} // namespace test_ema_forwarder
