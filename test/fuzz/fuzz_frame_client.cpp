// libFuzzer target: RFC 6455 message_decoder in the client role (unmasked server frames).
// Same layout and checks as fuzz_frame_server.cpp.
#define FUZZ_ROLE client
#include "fuzz_frame_server.cpp"
