-- Undoes 20250201000000_add_premiums.

-- DropForeignKey
ALTER TABLE "Premium" DROP CONSTRAINT "Premium_policyId_fkey";

-- DropTable
DROP TABLE "Premium";

-- DropEnum
DROP TYPE "PaymentStatus";
