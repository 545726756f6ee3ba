// Placeholder replaced below.
export async function benchCompare() { return null; }
export async function stopCompare() {}
