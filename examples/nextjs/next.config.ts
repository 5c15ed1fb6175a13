import type { NextConfig } from "next";

// @tenkaigen/client ships TypeScript sources: let Next compile them like the app's own code.
const nextConfig: NextConfig = {
  transpilePackages: ["@tenkaigen/client"],
};

export default nextConfig;
