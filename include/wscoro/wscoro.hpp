#pragma once
// wscoro: a C++20 coroutine WebSocket server framework on standalone Asio.
// Includes the whole public API.

#include "wscoro/config.hpp"
#include "wscoro/connection.hpp"
#include "wscoro/error.hpp"
#include "wscoro/events.hpp"
#include "wscoro/handshake_info.hpp"
#include "wscoro/logger.hpp"
#include "wscoro/message.hpp"
#include "wscoro/options.hpp"
#include "wscoro/prepared_message.hpp"
#include "wscoro/protocol/frame.hpp"
#include "wscoro/protocol/handshake.hpp"
#include "wscoro/protocol/http_request.hpp"
#include "wscoro/protocol/utf8.hpp"
#include "wscoro/server.hpp"
