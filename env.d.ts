/// <reference types="@remix-run/cloudflare" />
/// <reference types="vite/client" />
