# The shared-memory addon (native/shm.c → build/Release/paralab_shm.node), built
# by scripts/build-native.cjs on `npm install`. Linux only: elsewhere the target
# is empty and ranks use sockets.
{
  "targets": [
    {
      "target_name": "paralab_shm",
      "sources": ["native/shm.c"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["native/shm.c"]}]]
    }
  ]
}
