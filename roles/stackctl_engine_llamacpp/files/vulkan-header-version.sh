#!/bin/sh
# Print the version of the Vulkan headers under an include folder (1.3.239), or nothing.
# usage: vulkan-header-version.sh INCLUDE_DIR
header="$1/vulkan/vulkan_core.h"
[ -f "$header" ] || exit 0
patch=$(sed -n 's/^#define VK_HEADER_VERSION \([0-9][0-9]*\).*/\1/p' "$header")
majmin=$(sed -n 's/^#define VK_HEADER_VERSION_COMPLETE VK_MAKE_API_VERSION(0, *\([0-9]*\), *\([0-9]*\),.*/\1.\2/p' "$header")
[ -n "$patch" ] && [ -n "$majmin" ] && echo "$majmin.$patch"
exit 0
