import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    globalSetup: ["test/support/native-setup.ts"],
    env: { AWS_EC2_METADATA_DISABLED: "true", AWS_REGION: "eu-west-1" },
  },
});
