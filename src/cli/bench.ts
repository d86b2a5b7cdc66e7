export async function benchCommand(_args: string[]): Promise<number> { throw new Error("bench: not yet"); }
