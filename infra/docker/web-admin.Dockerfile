# MicroBima web admin. Build context: the repository root.
FROM node:20.19-bookworm-slim
WORKDIR /app
COPY apps/web-admin/package.json apps/web-admin/package-lock.json ./
RUN npm ci --omit=dev
COPY apps/web-admin/dist ./dist
EXPOSE 3000
CMD ["node", "dist/server.js"]
