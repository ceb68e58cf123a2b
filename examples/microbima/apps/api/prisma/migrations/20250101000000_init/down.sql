-- Undoes 20250101000000_init: drops what it created, in reverse order.

-- DropForeignKey
ALTER TABLE "Policy" DROP CONSTRAINT "Policy_customerId_fkey";

-- DropTable
DROP TABLE "Policy";

-- DropTable
DROP TABLE "Customer";

-- DropEnum
DROP TYPE "PolicyStatus";
